"""The HTTP side of the remote backend (remote.py): its settings, a client with a deadline
on every call, retries with backoff for transient failures, a cool-down after a server
went down, and one-line errors that never carry the API key. Kept apart so that
remote.py reads as the two model adapters (embeddings, rerank) over this transport.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import ModelError

log = logging.getLogger("semcode.models.remote")


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


class HttpClient:
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
            except NotFound:
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
                raise NotFound(f"HTTP 404 on {path}{detail}") from None
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


class NotFound(RemoteError):
    """HTTP 404: the endpoint is not there (the caller may try another path)."""


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


def server_report(client: HttpClient, model: str, deadline: float) -> str:
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
