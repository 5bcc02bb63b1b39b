"""From settings to loaded models: where a model file comes from (a local path or the
Hugging Face hub), which backend runs it, and what to tell the user when it can't.

`ModelSet` is the one object the engine and the LSP server hold. It loads lazily, never
raises for a missing model (it records one line saying why and returns None, so the
engine degrades to lexical-only or no-rerank), and serialises use of each model
(llama.cpp contexts are not thread-safe) with one lock per model.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from semcode.config import Settings, model_is_off
from semcode.models.auto import backend_for, model_for
from semcode.models.backends import Role, remote_url
from semcode.models.base import Embedder, ModelError, Reranker
from semcode.models.builtin import EMBEDDER_DIR, builtin_quality, embedder_folder, is_builtin
from semcode.models.factory import ModelRequest, build_model
from semcode.states import MODEL_UNAVAILABLE, ModelState

log = logging.getLogger(__name__)

HF_PREFIX = "hf:"
REMOTE_RETRY_S = 30.0  # how long a remote model that failed to load stays off


@dataclass(frozen=True)
class ModelSpec:
    """A parsed `embedding_model`/`reranker_model` setting."""

    raw: str
    repo_id: str | None = None  # hub models
    filename: str | None = None
    local_path: Path | None = None  # local files

    @property
    def off(self) -> bool:
        """The setting turns this model off (`off`, `none`, empty)."""
        return model_is_off(self.raw)

    @classmethod
    def parse(cls, raw: str) -> ModelSpec:
        """Read a setting: `off`, `builtin`, `hf:OWNER/REPO[/FILE]`, or a local file or
        folder."""
        text = raw.strip()
        if model_is_off(text):
            return cls(raw=text)
        if is_builtin(text):
            folder = embedder_folder()
            if folder is None:
                raise ModelError(f"model {raw!r}: this installation ships no built-in model "
                                 f"(expected {EMBEDDER_DIR})")
            return cls(raw=text, local_path=folder)
        if text.startswith(HF_PREFIX):
            parts = text[len(HF_PREFIX):].split("/")
            if len(parts) < 2 or not all(parts):
                raise ModelError(f"model {raw!r}: expected hf:OWNER/REPO/FILE.gguf "
                                 f"or hf:OWNER/REPO")
            # hf:OWNER/REPO names a whole repository (a static or MLX model folder).
            return cls(raw=text, repo_id="/".join(parts[:2]),
                       filename="/".join(parts[2:]) or None)
        return cls(raw=text, local_path=Path(os.path.expanduser(text)))


def resolve_model_file(spec: ModelSpec, offline: bool, download: bool = True) -> Path:
    """The local file for a spec: a local path as is, a hub file from the hub cache, or
    downloaded into it (with huggingface_hub's progress bar) when allowed."""
    if spec.local_path is not None:
        if not spec.local_path.exists():
            raise ModelError(f"model file not found: {spec.local_path}")
        return spec.local_path
    if not (spec.repo_id and spec.filename):
        raise ModelError(f"model {spec.raw}: expected hf:OWNER/REPO/FILE.gguf")
    return _hub_file(spec, spec.filename, offline, download)


def _hub_file(spec: ModelSpec, filename: str, offline: bool, download: bool) -> Path:
    """One file of a hub repository: from the cache, else downloaded (with
    huggingface_hub's progress bar) when allowed. Every failure is one ModelError line."""
    assert spec.repo_id
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

    # The cache first, read from disk alone: `hf_hub_download(local_files_only=True)`
    # would still build request headers, and huggingface_hub (2.x) fetches its agent
    # registry from the hub for those (a request per process, up to 3 s where the hub
    # is unreachable), so a cached model must never go through it.
    try:
        cached = try_to_load_from_cache(spec.repo_id, filename)
    except Exception as exc:  # noqa: BLE001 - any hub error becomes one line
        raise ModelError(f"model {spec.raw}: {_one_line(exc)}") from None
    if isinstance(cached, str):
        return Path(cached)
    if cached is not None:  # the hub said, and the cache remembers, there is no such file
        raise _NoSuchFile(filename)
    if offline or not download:
        why = "offline mode" if offline else "not downloaded yet"
        raise ModelError(f"model {spec.raw} is not in the cache ({why}; "
                         f"run `semcode models --download`)")
    unreachable = _hub_unreachable()
    if unreachable:
        raise ModelError(f"cannot download {spec.raw}: {unreachable}")
    _check_hub_file(spec, filename)
    _say_downloading(spec)
    try:
        return Path(hf_hub_download(spec.repo_id, filename, endpoint=_hub_endpoint()))
    except RemoteEntryNotFoundError:
        raise _NoSuchFile(filename) from None
    except LocalEntryNotFoundError as exc:  # the hub failed; its own error is the cause
        cause = exc.__cause__ or exc
        raise ModelError(f"cannot download {spec.raw}: {_one_line(cause)}") from None
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"cannot download {spec.raw}: {_one_line(exc)}") from None


def _check_hub_file(spec: ModelSpec, filename: str) -> None:
    """One HEAD for the file, without retries, before `hf_hub_download`: a file the
    repository lacks (another layout may have it), a hub that answers with an error
    (an outage: huggingface_hub would retry for ~25 s per file, logging each retry) or
    a server that is no hub (a captive portal, a wrong HF_ENDPOINT) is one line at once.
    The hub's "no such file" is left to `hf_hub_download`, which remembers it in the
    cache (so an offline run can pick another layout) and needs no retries for it."""
    assert spec.repo_id
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import RemoteEntryNotFoundError

    endpoint = _hub_endpoint()
    try:
        meta = get_hf_file_metadata(hf_hub_url(spec.repo_id, filename, endpoint=endpoint))
    except RemoteEntryNotFoundError:
        return
    except Exception as exc:  # noqa: BLE001 - any hub or network error becomes one line
        raise ModelError(f"cannot download {spec.raw}: {_one_line(exc)}") from None
    if not (meta.commit_hash and meta.etag):
        host = urlparse(endpoint).hostname or endpoint
        raise ModelError(f"cannot download {spec.raw}: {host} does not answer like a "
                         f"Hugging Face hub (check HF_ENDPOINT and any proxy)")


class _NoSuchFile(ModelError):
    """The repository has no such file (another layout may have it)."""


def resolve_model_folder(spec: ModelSpec, offline: bool, download: bool = True) -> Path:
    """The local folder of a static (model2vec) model: a local folder as is, or the hub
    repository's model files (config, weights, tokenizer) from the cache or downloaded,
    like a GGUF file is. The folder's layout is checked by the loader."""
    from semcode.models.static import LAYOUTS

    if spec.local_path is not None:
        if not spec.local_path.is_dir():
            raise ModelError(f"model folder not found: {spec.local_path}")
        return spec.local_path
    if not spec.repo_id or spec.filename:
        raise ModelError(f"model {spec.raw}: a static model is a repository (hf:OWNER/REPO) "
                         f"or a folder")
    first: ModelError | None = None
    for layout in LAYOUTS:  # model2vec's own layout first, then sentence-transformers'
        try:
            paths = [_hub_file(spec, name, offline, download) for name in layout[:3]]
        except _NoSuchFile as exc:
            first = first or ModelError(f"model {spec.raw}: no {exc} in the repository")
            continue
        config, name = paths[0], layout[0]
        return Path(str(config)[: -len(name)].rstrip("/\\"))  # the snapshot folder
    assert first is not None
    raise first


_announced: set[str] = set()


def _say_downloading(spec: ModelSpec) -> None:
    """One line on stderr (once per model and process) before the first byte: where the
    model comes from and where it goes. huggingface_hub's progress bars follow on a
    terminal; where stderr is a pipe or a log (an editor's output panel) they are hidden,
    and this line is what says why the first run waits."""
    if spec.raw in _announced:
        return
    _announced.add(spec.raw)
    from huggingface_hub import constants

    host = urlparse(_hub_endpoint()).hostname or "the hub"
    print(f"semcode: downloading {spec.raw} from {host} (first use; cached in "
          f"{constants.HF_HUB_CACHE})", file=sys.stderr, flush=True)


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


_hub_probe: dict[str, str | None] = {}


def _hub_unreachable() -> str | None:
    """Why the hub cannot be reached, or None. One quick TCP connect instead of
    huggingface_hub's retry loop (~25 s of retries and log noise on a machine with no
    network), remembered for the life of the process."""
    endpoint = _hub_endpoint()
    if endpoint not in _hub_probe:
        host, port, label = _probe_target(endpoint)
        try:
            socket.create_connection((host, port), timeout=5).close()
            _hub_probe[endpoint] = None
        except OSError as exc:
            _hub_probe[endpoint] = f"{label} is unreachable ({exc.strerror or exc})"
    return _hub_probe[endpoint]


def _probe_target(endpoint: str) -> tuple[str, int, str]:
    """(host, port, what to call it) of the hub's first connection: the hub itself, or the
    proxy the environment names for it (HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, NO_PROXY
    honoured; huggingface_hub's HTTP client reads the same variables), so a machine that
    reaches the hub only through a proxy is not told the hub is unreachable."""
    import urllib.request

    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme or "https") or \
        urllib.request.getproxies().get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        purl = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if purl.hostname:
            default = 443 if purl.scheme == "https" else 1080 if "socks" in purl.scheme else 80
            pport = purl.port or default
            return purl.hostname, pport, f"the proxy {purl.hostname}:{pport} (for {host})"
    return host, port, host


def cached_model_file(spec: ModelSpec) -> Path | None:
    """The file (or a static model's folder) if it is already on disk (never touches the
    network)."""
    try:
        if spec.repo_id and not spec.filename or (
                spec.local_path is not None and spec.local_path.is_dir()):
            return resolve_model_folder(spec, offline=True, download=False)
        return resolve_model_file(spec, offline=True, download=False)
    except ModelError:
        return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Slot:
    """One model role (embedder for documents, embedder for queries, reranker)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.model: Any = None
        self.state = ModelState.NOT_LOADED
        self.message = ""
        self.lock = threading.Lock()  # serialises use of the native model
        self.load_lock = threading.Lock()
        self.backend = ""
        self.backend_reason = ""
        self.retry_at = 0.0  # a remote server that was down is asked again after this
        self.shared = False  # the model belongs to another slot (never closed from here)


class ModelSet:
    """Lazily loaded models for one configuration, shared by every workspace."""

    def __init__(self, settings: Settings, on_notice: Callable[[str], None] | None = None,
                 download: bool = True) -> None:
        self.settings = settings
        self.download = download
        self._on_notice = on_notice
        self._slots = {role: _Slot(role) for role in ("embedder", "query_embedder", "reranker")}
        self._notified: set[str] = set()
        self._choices: dict[str, tuple[str, str]] = {}
        self._mark_off()

    def _mark_off(self) -> None:
        """Models set to "off" are known to be off before anything asks for them, so a
        client's first status already says so."""
        for role, slot in self._slots.items():
            try:
                off = ModelSpec.parse(self._spec_text(role)).off
            except ModelError:
                continue  # a malformed spec is reported when the model is first loaded
            if slot.state == ModelState.NOT_LOADED and off:
                slot.state, slot.message = ModelState.OFF, self._off_message(role)

    # ------------------------------------------------------------------ access
    def embedder(self) -> Embedder | None:
        """The document embedder (background indexing uses it)."""
        return self._get("embedder")

    def query_embedder(self) -> Embedder | None:
        """A second instance for queries, so a search never waits behind a long
        background embedding batch. llama.cpp memory-maps the weights, so the two
        instances share them; only the context (KV cache) is duplicated."""
        if self._get("embedder") is None:
            return None
        return self._get("query_embedder")

    def reranker(self) -> Reranker | None:
        """The loaded reranker (loading it on first use), or None when it is off or
        unavailable (`notices()` says why)."""
        return self._get("reranker")

    @contextmanager
    def using(self, role: str, model: Embedder | Reranker | None = None) -> Iterator[None]:
        """Hold a model for one call (`with models.using("reranker", reranker): ...`).
        Given the model taken earlier, taking and using it are one operation: if a settings
        change unloaded (closed) it in between, this raises `ModelError` instead of letting
        native code run on a freed model."""
        slot = self._slots[role]
        with slot.lock:
            if model is not None and slot.model is not model:
                raise ModelError(f"{self._label(role)} was reloaded by a settings change")
            yield

    def dense_weight(self) -> float:
        """The dense list's weight in fusion: the `dense_weight` setting times the loaded
        embedder's own factor (`fusion_weight`: below 1 for static models, whose list is
        a weaker ranker than BM25 on code; 1 for transformers)."""
        slot = self._slots["embedder"]
        loaded = slot.state == ModelState.LOADED
        factor = getattr(slot.model, "fusion_weight", 1.0) if loaded else 1.0
        return float(self.settings.dense_weight) * float(factor)

    def embedder_key(self) -> str | None:
        """What the configuration says the embedder is (model spec with `auto` resolved,
        backend, profile, remote server), without loading it; None when it is off. The
        index records which identity a key loaded as, so `semcode status` can count the
        configured model's vectors without loading the model."""
        spec = self._spec_text("embedder")
        try:
            if ModelSpec.parse(spec).off:
                return None
        except ModelError:
            return None
        backend, _ = backend_for(self.settings, "embedder")
        return json.dumps([spec, backend, self.settings.embedding_profile,
                           remote_url(self.settings, "embedder") if backend == "remote"
                           else ""])

    def embedder_identity(self) -> tuple[str, int] | None:
        """(the vector cache identity, dimensions) of the embedder, or None without one."""
        embedder = self.embedder()
        if embedder is None:
            return None
        return f"{embedder.info.identity}:{embedder.dims}", embedder.dims

    # ------------------------------------------------------------------ state
    def notices(self) -> list[str]:
        """One line per stage that is off and why (semantic search, reranking)."""
        lines = []
        emb, rer = self._slots["embedder"], self._slots["reranker"]
        if emb.state in MODEL_UNAVAILABLE:
            lines.append(f"semantic search is off: {emb.message}")
        if rer.state in MODEL_UNAVAILABLE and self.settings.rerank:
            lines.append(f"reranking is off: {rer.message}")
        return lines

    def status(self) -> dict[str, dict[str, object]]:
        """Per role: state, message, spec, what `auto` chose and why, backend, model info
        (the `models` part of the LSP and MCP status: published keys)."""
        out: dict[str, dict[str, object]] = {}
        for role in ("embedder", "reranker"):
            slot = self._slots[role]
            entry: dict[str, object] = {"state": slot.state.value, "message": slot.message,
                                        "spec": self._spec_text(role)}
            setting, why = self._setting_text(role), self._choice(role)[1]
            if why:  # "auto" was resolved for this machine: say to what, and why
                entry["setting"], entry["choice"] = setting, why
            if slot.backend:
                entry["backend"], entry["backend_reason"] = slot.backend, slot.backend_reason
            if slot.model is not None:
                info = slot.model.info
                entry.update(identity=info.identity, backend=info.backend, device=info.device,
                             path=info.path)
                if info.dims is not None:
                    entry["dims"] = info.dims
            if role == "embedder" and is_builtin(self._spec_text(role)):
                entry["builtin"] = True
                if quality := builtin_quality():
                    entry["quality"] = quality
            out[role] = entry
        return out

    def reconfigure(self, settings: Settings) -> None:
        """Apply new settings; models whose configuration changed are reloaded lazily."""
        remote_keys = ("remote_url", "remote_reranker_url", "remote_api_key_env",
                       "remote_timeout_s", "remote_batch_size")
        model_keys = ("embedding_model", "embedding_profile", "backend", "n_threads",
                      "n_gpu_layers", "embed_batch_tokens", "remote_embedding_model",
                      *remote_keys)
        rerank_keys = ("reranker_model", "backend", "n_threads", "n_gpu_layers",
                       "rerank_doc_tokens", "remote_reranker_model", *remote_keys)
        old, self.settings = self.settings, settings
        old_choice, self._choices = self._choices, {}
        if any(getattr(old, k) != getattr(settings, k) for k in model_keys):
            self._unload("embedder")
            self._unload("query_embedder")
        if any(getattr(old, k) != getattr(settings, k) for k in rerank_keys) or (
                old_choice.get("reranker", ("",))[0] != self._choice("reranker")[0]):
            self._unload("reranker")  # e.g. `auto` now fits (or no longer fits) the budget
        if old.offline != settings.offline:
            for role in self._slots:
                if self._slots[role].state == ModelState.MISSING:
                    self._unload(role)
        self._mark_off()

    def close(self) -> None:
        """Unload every model (native memory freed once no call holds it)."""
        for role in self._slots:
            self._unload(role)

    # ------------------------------------------------------------------ loading
    def _setting_text(self, role: str) -> str:
        return (self.settings.reranker_model if role == "reranker"
                else self.settings.embedding_model)

    def _choice(self, role: str) -> tuple[str, str]:
        """(model spec, why) with `auto` resolved for this machine, once per settings."""
        key: Role = "reranker" if role == "reranker" else "embedder"
        if key not in self._choices:
            self._choices[key] = model_for(self.settings, key)
        return self._choices[key]

    def _spec_text(self, role: str) -> str:
        return self._choice(role)[0]

    def _off_message(self, role: str) -> str:
        spec, why = self._choice(role)
        return why if why else f"{self._label(role)} is set to off"

    def _get(self, role: str) -> Any:
        slot = self._slots[role]
        if slot.state == ModelState.LOADED:
            return slot.model
        if slot.state == ModelState.ERROR and slot.retry_at and time.monotonic() >= slot.retry_at:
            self._unload(slot.role)  # the remote server may be back: try again
        if slot.state in MODEL_UNAVAILABLE:
            return None
        with slot.load_lock:
            if slot.state == ModelState.NOT_LOADED:
                self._load(slot)
        return slot.model if slot.state == ModelState.LOADED else None

    def _load(self, slot: _Slot) -> None:
        raw = self._spec_text(slot.role)
        slot.state = ModelState.LOADING
        try:
            if model_is_off(raw):
                slot.state, slot.message = ModelState.OFF, self._off_message(slot.role)
                return
            role: Role = "reranker" if slot.role == "reranker" else "embedder"
            slot.backend, slot.backend_reason = backend_for(self.settings, role)
            docs = self._slots["embedder"]
            if (slot.role == "query_embedder" and slot.backend == "model2vec"
                    and docs.state == ModelState.LOADED and docs.backend == "model2vec"):
                # A static model is a lookup table, safe to share between threads: no
                # second copy of it for queries.
                slot.model, slot.shared = docs.model, True
            else:
                slot.model = build_model(slot.backend, ModelRequest(role, raw, self.settings,
                                                                    self.download))
            slot.state, slot.message = ModelState.LOADED, ""
            log.info("loaded %s %s (%s, %s)", slot.role, raw, slot.backend,
                     slot.model.info.device)
        except ModelError as exc:
            missing = "not found" in str(exc) or "not in the cache" in str(exc) or \
                "cannot download" in str(exc)
            slot.state = ModelState.MISSING if missing else ModelState.ERROR
            slot.message = str(exc)
            if slot.backend == "remote":
                slot.retry_at = time.monotonic() + REMOTE_RETRY_S
            self._notice(slot)
        except Exception as exc:  # noqa: BLE001 - a broken model must not take the server down
            slot.state, slot.message = ModelState.ERROR, f"cannot load {raw}: {_one_line(exc)}"
            log.exception("loading %s failed", slot.role)
            self._notice(slot)

    def _notice(self, slot: _Slot) -> None:
        role = "embedder" if slot.role == "query_embedder" else slot.role
        if role in self._notified:
            return
        self._notified.add(role)
        line = (f"semantic search is off: {slot.message}" if role == "embedder"
                else f"reranking is off: {slot.message}")
        log.info(line)  # users see it through notices()/on_notice, once
        if self._on_notice is not None:
            self._on_notice(line)

    def _unload(self, role: str) -> None:
        slot = self._slots[role]
        with slot.lock:
            if slot.model is not None and not slot.shared:
                try:
                    slot.model.close()
                except Exception:  # noqa: BLE001
                    log.exception("closing %s", role)
            slot.model, slot.state, slot.message = None, ModelState.NOT_LOADED, ""
            slot.retry_at, slot.shared = 0.0, False
        self._notified.discard("embedder" if role == "query_embedder" else role)

    @staticmethod
    def _label(role: str) -> str:
        return "the reranker model" if role == "reranker" else "the embedding model"
