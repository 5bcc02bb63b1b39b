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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from semcode.config import Settings, model_is_off
from semcode.kinds import Role
from semcode.messages import first_line
from semcode.models.auto import backend_for, model_for
from semcode.models.backends import remote_url
from semcode.models.base import Embedder, ModelError, ModelInfo, ModelMissing, Reranker
from semcode.models.builtin import builtin_quality, builtin_reranker_quality, is_builtin
from semcode.models.factory import ModelRequest, build_model
from semcode.models.hub import ModelSpec
from semcode.states import MODEL_UNAVAILABLE, ModelState

log = logging.getLogger(__name__)

REMOTE_RETRY_S = 30.0  # how long a remote model that failed to load stays off
# The slot of the embedder queries use: its own instance of the embedding model, so a
# search never waits behind background embedding. Not a role: it reports as the embedder.
QUERY_EMBEDDER = "query_embedder"


@dataclass(frozen=True)
class ModelNotice:
    """A search stage that is off because of its model: which role, and why."""

    role: Role
    reason: str

    def line(self) -> str:
        """The line users read ("semantic search is off: …", "reranking is off: …")."""
        stage = "semantic search" if self.role == Role.EMBEDDER else "reranking"
        return f"{stage} is off: {self.reason}"


@dataclass(frozen=True)
class ModelStatus:
    """Where one role's model stands (the `models` part of the LSP and MCP status is made
    from it by each adapter): its state and why, the setting and what `auto` chose for it,
    the backend, and what the loaded model is."""

    state: ModelState
    message: str
    spec: str  # the model setting with `auto` resolved
    setting: str = ""  # the setting as written, when `auto` was resolved ...
    choice: str = ""  # ... and why it resolved to `spec` on this machine
    backend: str = ""  # the backend chosen before loading, and why
    backend_reason: str = ""
    info: ModelInfo | None = None  # the loaded model (its `backend` wins over the above)
    builtin: bool = False  # one of the models shipped in the package
    quality: str = ""  # a built-in model's measured quality, one line


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
        slots = (Role.EMBEDDER, QUERY_EMBEDDER, Role.RERANKER)
        self._slots = {role: _Slot(role) for role in slots}
        self._notified: set[str] = set()
        self._choices: dict[str, tuple[str, str]] = {}
        self._mark_off()

    def _mark_off(self) -> None:
        """Models set to "off" are known to be off before anything asks for them, so a
        client's first status already says so."""
        for role, slot in self._slots.items():
            try:
                off = ModelSpec.parse(self._spec_text(role), _model_role(role)).off
            except ModelError:
                continue  # a malformed spec is reported when the model is first loaded
            if slot.state == ModelState.NOT_LOADED and off:
                slot.state, slot.message = ModelState.OFF, self._off_message(role)

    # ------------------------------------------------------------------ access
    def embedder(self) -> Embedder | None:
        """The document embedder (background indexing uses it)."""
        return self._get(Role.EMBEDDER)

    def query_embedder(self) -> Embedder | None:
        """A second instance for queries, so a search never waits behind a long
        background embedding batch. llama.cpp memory-maps the weights, so the two
        instances share them; only the context (KV cache) is duplicated."""
        if self._get(Role.EMBEDDER) is None:
            return None
        return self._get(QUERY_EMBEDDER)

    def reranker(self) -> Reranker | None:
        """The loaded reranker (loading it on first use), or None when it is off or
        unavailable (`notices()` says why)."""
        return self._get(Role.RERANKER)

    @contextmanager
    def using(self, role: str, model: Embedder | Reranker | None = None) -> Iterator[None]:
        """Hold a model for one call (`with models.using(Role.RERANKER, reranker): ...`).
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
        slot = self._slots[Role.EMBEDDER]
        loaded = slot.state == ModelState.LOADED
        factor = getattr(slot.model, "fusion_weight", 1.0) if loaded else 1.0
        return float(self.settings.dense_weight) * float(factor)

    def embedder_key(self) -> str | None:
        """What the configuration says the embedder is (model spec with `auto` resolved,
        backend, profile, remote server), without loading it; None when it is off. The
        index records which identity a key loaded as, so `semcode status` can count the
        configured model's vectors without loading the model."""
        spec = self._spec_text(Role.EMBEDDER)
        try:
            if ModelSpec.parse(spec).off:
                return None
        except ModelError:
            return None
        backend, _ = backend_for(self.settings, Role.EMBEDDER)
        return json.dumps([spec, backend, self.settings.embedding_profile,
                           remote_url(self.settings, Role.EMBEDDER) if backend == "remote"
                           else ""])

    def embedder_identity(self) -> tuple[str, int] | None:
        """(the vector cache identity, dimensions) of the embedder, or None without one."""
        embedder = self.embedder()
        if embedder is None:
            return None
        return f"{embedder.info.identity}:{embedder.dims}", embedder.dims

    # ------------------------------------------------------------------ state
    def notices(self) -> list[ModelNotice]:
        """One notice per stage that is off and why (semantic search, reranking)."""
        notices = []
        emb, rer = self._slots[Role.EMBEDDER], self._slots[Role.RERANKER]
        if emb.state in MODEL_UNAVAILABLE:
            notices.append(ModelNotice(Role.EMBEDDER, emb.message))
        if rer.state in MODEL_UNAVAILABLE and self.settings.rerank:
            notices.append(ModelNotice(Role.RERANKER, rer.message))
        return notices

    def status(self) -> dict[Role, ModelStatus]:
        """Per role: its state and message, the resolved setting, what `auto` chose and why,
        the backend and the loaded model's info."""
        out: dict[Role, ModelStatus] = {}
        for role in (Role.EMBEDDER, Role.RERANKER):
            slot, spec = self._slots[role], self._spec_text(role)
            why = self._choice(role)[1]  # set when "auto" was resolved for this machine
            builtin = is_builtin(spec)
            quality = ""
            if builtin:
                quality = (builtin_quality() if role == Role.EMBEDDER
                           else builtin_reranker_quality()) or ""
            out[role] = ModelStatus(
                state=slot.state, message=slot.message, spec=spec,
                setting=self._setting_text(role) if why else "", choice=why or "",
                backend=slot.backend, backend_reason=slot.backend_reason,
                info=slot.model.info if slot.model is not None else None,
                builtin=builtin, quality=quality)
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
            self._unload(Role.EMBEDDER)
            self._unload(QUERY_EMBEDDER)
        if any(getattr(old, k) != getattr(settings, k) for k in rerank_keys) or (
                old_choice.get(Role.RERANKER, ("",))[0] != self._choice(Role.RERANKER)[0]):
            self._unload(Role.RERANKER)  # e.g. `auto` now fits (or no longer fits) the budget
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
        return (self.settings.reranker_model if role == Role.RERANKER
                else self.settings.embedding_model)

    def _choice(self, role: str) -> tuple[str, str]:
        """(model spec, why) with `auto` resolved for this machine, once per settings."""
        key: Role = Role.RERANKER if role == Role.RERANKER else Role.EMBEDDER
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
            role: Role = Role.RERANKER if slot.role == Role.RERANKER else Role.EMBEDDER
            slot.backend, slot.backend_reason = backend_for(self.settings, role)
            docs = self._slots[Role.EMBEDDER]
            if (slot.role == QUERY_EMBEDDER and slot.backend == "model2vec"
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
            missing = isinstance(exc, ModelMissing)
            slot.state = ModelState.MISSING if missing else ModelState.ERROR
            slot.message = str(exc)
            if slot.backend == "remote":
                slot.retry_at = time.monotonic() + REMOTE_RETRY_S
            self._notice(slot)
        except Exception as exc:  # noqa: BLE001 - a broken model must not take the server down
            slot.state = ModelState.ERROR
            slot.message = f"cannot load {raw}: {first_line(exc, with_type=True)}"
            log.exception("loading %s failed", slot.role)
            self._notice(slot)

    def _notice(self, slot: _Slot) -> None:
        role = Role.EMBEDDER if slot.role == QUERY_EMBEDDER else slot.role
        if role in self._notified:
            return
        self._notified.add(role)
        line = ModelNotice(Role(role), slot.message).line()
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
        self._notified.discard(Role.EMBEDDER if role == QUERY_EMBEDDER else role)

    @staticmethod
    def _label(role: str) -> str:
        return "the reranker model" if role == Role.RERANKER else "the embedding model"


def _model_role(slot: str) -> Role:
    """The role of a slot's model (the query embedder's slot holds an embedder)."""
    return Role.RERANKER if slot == Role.RERANKER else Role.EMBEDDER
