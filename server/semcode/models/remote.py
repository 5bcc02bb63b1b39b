"""Embedder and reranker served by another process over HTTP.

* `RemoteEmbedder` speaks the OpenAI-compatible `POST /v1/embeddings` (llama.cpp's
  `llama-server --embedding`, llama-cpp-python's server, Ollama, vLLM, TEI). The endpoint
  is treated as *raw*: the profile's query instruction and document template are applied
  here, client-side, exactly as the in-process backends do; the server's tokenizer adds
  the model's own special tokens (Qwen3-Embedding GGUFs and HF tokenizers append the EOS
  that last-token pooling reads). Vectors are L2-normalised here whatever the server did.
* `RemoteReranker` speaks the rerank shape shared by llama-server, vLLM, Jina and Cohere
  (`POST /v1/rerank` or `/rerank`, `{"query", "documents"}` -> `{"results": [{"index",
  "relevance_score"}]}`) and TEI's (`/rerank`, `{"query", "texts"}` -> `[{"index",
  "score"}]`).

Transport is the standard library's urllib (no new dependency). Every public call has a
deadline (`RemoteConfig.timeout_s`, retries included), so a search is never stuck behind a
dead server; transient failures (connection refused/reset, timeouts, HTTP 429/5xx) are
retried with exponential backoff while the deadline allows; a failure then marks the
server down for `cooldown_s`, during which calls fail at once, and the next call after it
tries again (recovery needs no restart). Every failure is one `ModelError` line naming the
server and the reason; the API key (read from the environment variable named in the
config, at each request) is never logged, never put in a message, never in an identity.

Cache identity (`ModelInfo.identity`): ``remote:<digest>:<recipe>`` where the digest
covers the normalised base URL (scheme, host, port, path; no credentials, no query), the
model name sent, what the server reports about it (`/v1/models` entry: id, owned_by,
meta; the `model` field of the embedding response) and the vector width; the recipe is
the profile (name, templates, dims). Consequences: every client of the same server and
model shares vectors; a different URL, model or server-reported model gets its own; a
remote model never shares vectors with a local GGUF, even the same file, because the
server's weights, quantisation, truncation and pooling cannot be verified from here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from .base import (
    EmbeddingProfile,
    ModelError,
    ModelInfo,
    ProgressFn,
    RerankerProfile,
)
from .common import (
    CHARS_PER_TOKEN_CAP,
    MeasuredEmbedder,
    MeasuredReranker,
    Throughput,
    normalize_rows,
    output_dims,
    sigmoid,
)
from .profiles import QWEN3_RERANKER, detect_embedding_profile

BACKEND = "remote"
log = logging.getLogger(__name__)


class RemoteError(ModelError):
    """A remote model server failed (down, slow, HTTP error, malformed answer)."""


@dataclass(frozen=True)
class RemoteConfig:
    """Where and how to reach a model server (settings `remote_*`)."""

    base_url: str  # e.g. "http://gpu-box:8080" (a trailing "/v1" is accepted)
    model: str = ""  # the name sent as "model" ("" lets a one-model server pick)
    api_key_env: str = "SEMCODE_REMOTE_API_KEY"  # variable holding the key; unset: no auth
    timeout_s: float = 30.0  # deadline of one call (one embedding batch, one rerank)
    retries: int = 2  # extra attempts for transient failures, within the deadline
    backoff_s: float = 0.25  # first pause between attempts, doubled each time
    batch_size: int = 32  # texts per embedding request
    cooldown_s: float = 15.0  # after a failure, fail fast for this long, then try again
    rerank_api: str = "auto"  # "auto" (Jina/Cohere/llama-server shape) | "tei"
    rerank_path: str = ""  # "" tries /v1/rerank then /rerank
    # Rerank scores: "probability" as returned, "logit" -> sigmoid, "auto": sigmoid when a
    # call returns any score outside [0, 1] (llama-server's rank head gives raw logits).
    rerank_scores: str = "auto"

    def __post_init__(self) -> None:
        if not self.base_url.strip():
            raise ModelError("remote backend: no server URL (setting `remote_url`)")
        parts = urlsplit(self.base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelError(f"remote backend: not an http(s) URL: {_safe_url(self.base_url)}")
        if self.rerank_api not in ("auto", "tei"):
            raise ModelError(f"remote backend: rerank_api must be auto or tei, "
                             f"got {self.rerank_api!r}")
        if self.rerank_scores not in ("auto", "probability", "logit"):
            raise ModelError("remote backend: rerank_scores must be auto, probability or logit")


def _safe_url(url: str) -> str:
    """The URL without credentials or query string (fit for logs, messages, identities)."""
    p = urlsplit(url.strip())
    host = (p.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{p.port}" if p.port else host
    return urlunsplit((p.scheme.lower(), netloc, p.path.rstrip("/"), "", ""))


def _api_root(url: str) -> str:
    """Base URL without a trailing "/v1": paths below are added with their own prefix."""
    safe = _safe_url(url)
    return safe[: -len("/v1")] if safe.endswith("/v1") else safe


class _Client:
    """JSON over HTTP with a per-call deadline, retries and a down-cooldown."""

    def __init__(self, config: RemoteConfig, role: str) -> None:
        self.config = config
        self.role = role
        self.root = _api_root(config.base_url)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._last_error = ""

    def _fail(self, reason: str) -> RemoteError:
        return RemoteError(f"{self.role} server {self.root}: {reason}")

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json",
             "User-Agent": "semcode"}
        key = os.environ.get(self.config.api_key_env, "") if self.config.api_key_env else ""
        if key.strip():
            h["Authorization"] = f"Bearer {key.strip()}"
        return h

    def request(self, method: str, path: str, payload: Mapping[str, object] | None = None,
                deadline: float | None = None, use_cooldown: bool = True) -> Any:
        """The decoded JSON answer, or RemoteError. Transient failures are retried.
        (Any: JSON as the server sent it; each caller validates its shape.)"""
        now = time.monotonic()
        if use_cooldown and now < self._down_until:
            wait = self._down_until - now
            raise self._fail(f"unavailable ({self._last_error}); retrying in {wait:.0f} s")
        if deadline is None:
            deadline = now + self.config.timeout_s
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        pause = self.config.backoff_s
        attempt = 0
        while True:
            attempt += 1
            left = deadline - time.monotonic()
            if left <= 0:
                late = self._fail(f"no answer within {self.config.timeout_s:g} s")
                self._mark_down(str(late))
                raise late
            try:
                return self._once(method, path, body, left)
            except _Transient as t:
                reason = t.reason
            except _NotFound:
                raise
            except RemoteError as failed:
                self._mark_down(str(failed))
                raise
            if attempt > self.config.retries or time.monotonic() + pause >= deadline:
                self._mark_down(reason)
                raise self._fail(reason)
            time.sleep(pause)
            pause *= 2

    def _mark_down(self, reason: str) -> None:
        with self._lock:
            self._last_error = reason.split(": ", 1)[-1] if reason.startswith(self.role) \
                else reason
            self._down_until = time.monotonic() + self.config.cooldown_s
        log.warning("%s", self._fail(self._last_error))

    def mark_up(self) -> None:
        """Forget a cool-down: the server just answered."""
        self._down_until = 0.0

    def _once(self, method: str, path: str, body: bytes | None, timeout: float) -> Any:
        req = urllib.request.Request(self.root + path, data=body, method=method,
                                     headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = _error_detail(e)
            if e.code == 404:
                raise _NotFound(f"HTTP 404 on {path}{detail}") from None
            if e.code in (408, 429) or e.code >= 500:
                raise _Transient(f"HTTP {e.code} on {path}{detail}") from None
            raise self._fail(f"HTTP {e.code} on {path}{detail}") from None
        except urllib.error.URLError as e:
            r = e.reason
            if isinstance(r, socket.timeout | TimeoutError):
                raise _Transient(f"timed out after {timeout:.1f} s") from None
            text = getattr(r, "strerror", None) or str(r)
            raise _Transient(f"cannot connect ({text})") from None
        except TimeoutError:
            raise _Transient(f"timed out after {timeout:.1f} s") from None
        except (ConnectionError, OSError) as e:
            raise _Transient(f"connection failed ({e.strerror or e})") from None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            snippet = raw[:60].decode("utf-8", "replace").replace("\n", " ")
            raise self._fail(f"malformed JSON from {path} ({snippet!r})") from None


class _Transient(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NotFound(RemoteError):
    pass


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        text = e.read(300).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001
        return ""
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            err = data.get("error", data.get("message", data.get("detail", "")))
            if isinstance(err, dict):
                err = err.get("message", "")
            text = str(err)
    except ValueError:
        pass
    text = " ".join(text.split())[:160]
    return f": {text}" if text else ""


def _server_report(client: _Client, model: str, deadline: float) -> str:
    """What /v1/models says about `model` (id, owner, meta), or "" if it says nothing."""
    try:
        data = client.request("GET", "/v1/models", deadline=deadline, use_cooldown=False)
    except ModelError:
        return ""
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return ""
    chosen = None
    for e in entries:
        if isinstance(e, dict) and (not model or e.get("id") == model):
            chosen = e
            break
    if chosen is None:
        return ""
    keep = {k: chosen.get(k) for k in ("id", "owned_by", "meta") if k in chosen}
    return json.dumps(keep, sort_keys=True, default=str)


# --------------------------------------------------------------------------- embedder


class RemoteEmbedder(MeasuredEmbedder):
    """Embeddings from an OpenAI-compatible `/v1/embeddings` endpoint.

    Construction probes the server once (width, reported model) and raises ModelError if
    it cannot be reached. `profile` defaults to the one matching the model name
    (Qwen3-Embedding gets its query instruction)."""

    def __init__(self, config: RemoteConfig, profile: EmbeddingProfile | None = None) -> None:
        self.config = config
        self._client = _Client(config, "embedding")
        self.profile = profile or detect_embedding_profile({}, config.model or "")
        deadline = time.monotonic() + config.timeout_s
        probe = self._request(["semcode probe"], deadline, use_cooldown=False)
        width = probe[0].shape[0]
        self._dims = output_dims(self.profile, width)
        self._width = width
        report = _server_report(self._client, config.model, deadline)
        self._speed = Throughput()
        digest = hashlib.sha256(
            "|".join((self._client.root, config.model, self._reported_model, report,
                      str(width))).encode()
        ).hexdigest()[:32]
        p = self.profile
        recipe = f"{p.name}|d={self._dims}|" + hashlib.sha256(
            f"{p.query_template}\0{p.document_template}\0{p.task}".encode()).hexdigest()[:8]
        self._info = ModelInfo(identity=f"remote:{digest}:{recipe}", backend=BACKEND,
                               device=self._client.root, path=self._client.root
                               + (f" ({config.model})" if config.model else ""),
                               dims=self._dims)

    def embed_documents(
        self, texts: Sequence[str], progress: ProgressFn | None = None
    ) -> np.ndarray:
        """One L2-normalised row per text, in order, `batch_size` texts a request (each cut by
        characters first, so megabytes of minified code never go over the wire). If `progress`
        returns True the rows finished so far are returned."""
        # Never ship megabytes of minified code per chunk.
        cap = self.profile.max_tokens * CHARS_PER_TOKEN_CAP
        inputs = [self.profile.format_document(t[:cap]) for t in texts]
        out = np.zeros((len(inputs), self._dims), dtype=np.float32)
        step = max(1, self.config.batch_size)
        done = 0
        while done < len(inputs):
            chunk = inputs[done : done + step]
            out[done : done + len(chunk)] = self._embed(chunk)
            done += len(chunk)
            if progress is not None and progress(done, len(inputs)):
                return out[:done]
        return out

    def embed_query(self, query: str) -> np.ndarray:
        """The query with the profile's instruction, embedded by the server: shape (dims,)."""
        vec: np.ndarray = self._embed([self.profile.format_query(query)])[0]
        return vec

    def _embed(self, inputs: list[str]) -> np.ndarray:
        t0 = time.perf_counter()
        rows = self._request(inputs, time.monotonic() + self.config.timeout_s)
        self._speed.add(getattr(self, "_last_tokens", 0), time.perf_counter() - t0)
        mat = np.stack(rows)
        if mat.shape[1] != self._width:
            err = self._client._fail(
                f"returned {mat.shape[1]}-dimensional vectors, expected {self._width} "
                "(did the model behind the URL change?)")
            self._client._mark_down(str(err))
            raise err
        mat = mat[:, : self._dims]
        if self.profile.normalize:
            normalize_rows(mat)
        return mat.astype(np.float32, copy=False)

    def _request(self, inputs: list[str], deadline: float,
                 use_cooldown: bool = True) -> list[np.ndarray]:
        payload: dict[str, Any] = {"input": inputs}
        if self.config.model:
            payload["model"] = self.config.model
        data = self._client.request("POST", "/v1/embeddings", payload, deadline, use_cooldown)
        try:
            rows = _parse_embeddings(data, len(inputs))
        except ValueError as e:
            err = self._client._fail(f"malformed embeddings response ({e})")
            self._client._mark_down(str(err))
            raise err from None
        self._reported_model = str(data.get("model", "")) if isinstance(data, dict) else ""
        usage = data.get("usage") if isinstance(data, dict) else None
        self._last_tokens = int(usage.get("prompt_tokens", 0) or 0) \
            if isinstance(usage, dict) else 0
        self._client.mark_up()
        return rows

    def close(self) -> None:
        """Nothing to free: every request opens its own connection."""
        pass


def _parse_embeddings(data: object, n: int) -> list[np.ndarray]:
    """OpenAI's {"data": [{"index", "embedding"}]} or TEI's bare [[...], ...]."""
    if isinstance(data, dict):
        items = data.get("data")
        if not isinstance(items, list):
            raise ValueError("no 'data' list")
        if all(isinstance(it, dict) and "index" in it for it in items):
            items = sorted(items, key=lambda it: int(it["index"]))
        vectors = [it.get("embedding") if isinstance(it, dict) else None for it in items]
    elif isinstance(data, list):
        vectors = data
    else:
        raise ValueError(f"unexpected {type(data).__name__}")
    if len(vectors) != n:
        raise ValueError(f"{len(vectors)} vectors for {n} inputs")
    rows = []
    width = None
    for v in vectors:
        if isinstance(v, str):
            raise ValueError("base64 vectors are not supported")
        if not isinstance(v, list) or not v:
            raise ValueError("a vector is missing or empty")
        if v and isinstance(v[0], list):  # token-level output (pooling none)
            raise ValueError("per-token vectors: the server has no pooling configured")
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("a vector holds non-numbers") from None
        if arr.ndim != 1 or not np.all(np.isfinite(arr)):
            raise ValueError("a vector holds non-finite values")
        if width is not None and arr.shape[0] != width:
            raise ValueError("vectors of different widths")
        width = arr.shape[0]
        rows.append(arr.astype(np.float32))
    return rows


# --------------------------------------------------------------------------- reranker


class RemoteReranker(MeasuredReranker):
    """Scores from a rerank endpoint. The server applies its own prompt (llama-server
    formats Qwen3-Reranker's template itself); `profile` is informational. Construction
    checks the endpoint with one tiny request."""

    def __init__(self, config: RemoteConfig, profile: RerankerProfile | None = None) -> None:
        self.config = config
        self._client = _Client(config, "rerank")
        self.profile = profile or replace(QWEN3_RERANKER, name="remote")
        self._path = config.rerank_path or ""
        # In estimated tokens (characters / 4, the usual estimate): enough to size the depth.
        self._speed = Throughput()
        deadline = time.monotonic() + config.timeout_s
        self._call("semcode probe", ["probe"], deadline, use_cooldown=False)
        report = _server_report(self._client, config.model, deadline)
        digest = hashlib.sha256(
            "|".join((self._client.root, self._path, config.model, report)).encode()
        ).hexdigest()[:32]
        self._info = ModelInfo(identity=f"remote:{digest}", backend=BACKEND,
                               device=self._client.root, path=self._client.root + self._path
                               + (f" ({config.model})" if config.model else ""))

    def score(
        self, query: str, documents: Sequence[str], progress: ProgressFn | None = None
    ) -> list[float]:
        """One score in [0, 1] per document, in order, in one request (documents cut by characters;
        the server trims by tokens). Throughput is estimated from characters (about 4 a token),
        since rerank servers report no token counts."""
        if not documents:
            return []
        # A generous character cap (the server trims by tokens): ~8 characters a token.
        cap = max(1, self.profile.max_doc_tokens) * 8
        docs = [d[:cap] for d in documents]
        t0 = time.perf_counter()
        scores = self._call(query, docs, time.monotonic() + self.config.timeout_s)
        chars = sum(len(d) for d in docs) + len(query) * len(docs)
        self._speed.add(chars / 4, time.perf_counter() - t0)
        if progress is not None:
            progress(len(docs), len(docs))
        return scores

    def _call(self, query: str, docs: list[str], deadline: float,
              use_cooldown: bool = True) -> list[float]:
        payload: dict[str, Any] = {"query": query}
        if self.config.rerank_api == "tei":
            payload.update(texts=docs, raw_scores=False, return_text=False)
        else:
            payload.update(documents=docs, top_n=len(docs), return_documents=False)
        if self.config.model:
            payload["model"] = self.config.model
        paths = [self._path] if self._path else ["/v1/rerank", "/rerank"]
        data: Any = None
        for i, path in enumerate(paths):
            try:
                data = self._client.request("POST", path, payload, deadline, use_cooldown)
                self._path = path
                break
            except _NotFound as e:
                if i == len(paths) - 1:
                    self._client._mark_down(str(e))
                    raise self._client._fail(f"no rerank endpoint ({e})") from None
        try:
            raw = _parse_rerank(data, len(docs))
        except ValueError as e:
            err = self._client._fail(f"malformed rerank response ({e})")
            self._client._mark_down(str(err))
            raise err from None
        self._client.mark_up()
        mode = self.config.rerank_scores
        if mode == "logit" or (mode == "auto" and any(s < 0 or s > 1 for s in raw)):
            return [sigmoid(s) for s in raw]
        return raw

    def close(self) -> None:
        """Nothing to free: every request opens its own connection."""
        pass


def _parse_rerank(data: object, n: int) -> list[float]:
    items = data.get("results", data.get("data")) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("no 'results' list")
    scores: list[float | None] = [None] * n
    for it in items:
        if not isinstance(it, dict):
            raise ValueError("a result is not an object")
        try:
            idx = int(it["index"])
            value = it.get("relevance_score", it.get("score"))
            s = float(value)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            raise ValueError("a result lacks index or score") from None
        if not 0 <= idx < n or not math.isfinite(s):
            raise ValueError(f"bad result index {idx} or score")
        scores[idx] = s
    if any(s is None for s in scores):
        raise ValueError(f"{sum(s is None for s in scores)} of {n} documents have no score")
    return [float(s) for s in scores if s is not None]
