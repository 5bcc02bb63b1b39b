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

Transport (remote_http.py) is the standard library's urllib (no new dependency). Every
public call has a deadline (`RemoteConfig.timeout_s`, retries included), so a search is
never stuck behind a dead server; transient failures (connection refused/reset,
timeouts, HTTP 429/5xx) are retried with exponential backoff while the deadline allows;
a failure then marks the server down for `cooldown_s`, during which calls fail at once,
and the next call after it tries again (recovery needs no restart). Every failure is one
`ModelError` line naming the server and the reason; the API key (read from the
environment variable named in the config, at each request) is never logged, never put in
a message, never in an identity.

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
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .base import (
    EmbeddingProfile,
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
from .remote_http import HttpClient, NotFound, RemoteConfig, server_report

BACKEND = "remote"
log = logging.getLogger(__name__)


class RemoteEmbedder(MeasuredEmbedder):
    """Embeddings from an OpenAI-compatible `/v1/embeddings` endpoint.

    Construction probes the server once (width, reported model) and raises ModelError if
    it cannot be reached. `profile` defaults to the one matching the model name
    (Qwen3-Embedding gets its query instruction)."""

    def __init__(self, config: RemoteConfig, profile: EmbeddingProfile | None = None) -> None:
        self.config = config
        self._client = HttpClient(config, "embedding")
        self.profile = profile or detect_embedding_profile({}, config.model or "")
        deadline = time.monotonic() + config.timeout_s
        probe = self._request(["semcode probe"], deadline, use_cooldown=False)
        width = probe[0].shape[0]
        self._dims = output_dims(self.profile, width)
        self._width = width
        report = server_report(self._client, config.model, deadline)
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
        self._client = HttpClient(config, "rerank")
        self.profile = profile or replace(QWEN3_RERANKER, name="remote")
        self._path = config.rerank_path or ""
        # In estimated tokens (characters / 4, the usual estimate): enough to size the depth.
        self._speed = Throughput()
        deadline = time.monotonic() + config.timeout_s
        self._call("semcode probe", ["probe"], deadline, use_cooldown=False)
        report = server_report(self._client, config.model, deadline)
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
            except NotFound as e:
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
