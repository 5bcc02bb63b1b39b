"""The one way a model is constructed: `build_model(backend, ModelRequest)`. Every
backend registers a typed factory with `register_backend()`; the built-in ones
(llama.cpp, MLX, remote, model2vec) are registered here, each importing its backend's
module (and so its runtime) only when it builds.

Separate from choosing the backend (`backends.py`, `auto.py`): the registry asks those
first, then hands the answer here; a test or a plug-in can register a backend of its own
without touching the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from semcode.config import Settings
from semcode.kinds import Role
from semcode.models.backends import remote_url
from semcode.models.base import Embedder, EmbeddingProfile, ModelError, RerankBlend, Reranker
from semcode.models.builtin import is_builtin
from semcode.models.hub import ModelSpec, resolve_model_file, resolve_model_folder
from semcode.models.profiles import builtin_reranker_recipe, get_embedding_profile

if TYPE_CHECKING:
    from semcode.models.remote import RemoteConfig


@dataclass(frozen=True)
class ModelRequest:
    """Everything a backend needs to build one model."""

    role: Role
    spec: str  # the model setting with "auto" resolved ("hf:...", a path, a repo)
    settings: Settings
    download: bool = True  # may fetch from the hub (False: the cache only)

    @property
    def offline(self) -> bool:
        """Whether the settings forbid the network (`offline_mode`)."""
        return bool(self.settings.offline_mode)


# A backend's builder: the request in, a loaded model out (or ModelError, one line).
BackendFactory = Callable[[ModelRequest], Embedder | Reranker]


_FACTORIES: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make `factory` the builder of models for backend `name`."""
    _FACTORIES[name] = factory


def build_model(backend: str, request: ModelRequest) -> Embedder | Reranker:
    """The Embedder/Reranker for `request` on `backend`. Raises ModelError (one line)."""
    factory = _FACTORIES.get(backend)
    if factory is None:
        raise ModelError(f"backend {backend!r} is not available "
                         f"(known: {', '.join(sorted(_FACTORIES))})")
    return factory(request)


def _explicit_profile(settings: Settings) -> EmbeddingProfile | None:
    name = settings.embedding_profile
    return None if name == "auto" else get_embedding_profile(name)


def _build_llama_cpp(req: ModelRequest) -> Embedder | Reranker:
    from . import llama_cpp

    spec = ModelSpec.parse(req.spec, req.role)
    if spec.repo_id and not spec.filename:
        raise ModelError(f"model {req.spec}: llama.cpp needs a GGUF file "
                         f"(hf:OWNER/REPO/FILE.gguf)")
    path = resolve_model_file(spec, req.offline, req.download)
    s = req.settings
    if req.role == Role.RERANKER:
        shipped = builtin_reranker_recipe() if is_builtin(req.spec) else None
        reranker = llama_cpp.open_reranker(
            path, n_threads=s.n_threads, n_gpu_layers=s.n_gpu_layers,
            max_doc_tokens=s.rerank_doc_tokens,
            profile=shipped.profile if shipped is not None else None)
        if shipped is not None:  # never fitted: not shown to help, so weight 0 (not run)
            reranker.blend = shipped.blend or RerankBlend(weight=0.0)
        return reranker
    return llama_cpp.LlamaCppEmbedder(path, profile=_explicit_profile(s),
                                      n_threads=s.n_threads, n_gpu_layers=s.n_gpu_layers,
                                      batch_tokens=s.embed_batch_tokens)


def _build_mlx(req: ModelRequest) -> Embedder | Reranker:
    from .mlx import MlxEmbedder, MlxReranker

    s = req.settings
    if req.role == Role.RERANKER:
        return MlxReranker(req.spec, offline=req.offline, max_doc_tokens=s.rerank_doc_tokens)
    return MlxEmbedder(req.spec, profile=_explicit_profile(s),
                       batch_tokens=s.embed_batch_tokens, offline=req.offline)


def remote_config(settings: Settings, role: str) -> RemoteConfig:
    """The remote backend's connection settings for a role's model."""
    from .remote import RemoteConfig

    model = (settings.remote_reranker_model if role == Role.RERANKER
             else settings.remote_embedding_model)
    return RemoteConfig(
        base_url=remote_url(settings, role),
        model=str(model or ""),
        api_key_env=str(settings.remote_api_key_env or ""),
        timeout_s=float(settings.remote_timeout_s),
        batch_size=int(settings.remote_batch_size),
    )


def _build_remote(req: ModelRequest) -> Embedder | Reranker:
    from .remote import RemoteEmbedder, RemoteReranker

    cfg = remote_config(req.settings, req.role)
    if req.role == Role.RERANKER:
        return RemoteReranker(cfg)
    return RemoteEmbedder(cfg, profile=_explicit_profile(req.settings))


def _build_model2vec(req: ModelRequest) -> Embedder | Reranker:
    from .static import StaticEmbedder

    if req.role == Role.RERANKER:
        raise ModelError(f"{req.spec} is a static embedding model, not a reranker")
    folder = resolve_model_folder(ModelSpec.parse(req.spec), req.offline, req.download)
    profile = _explicit_profile(req.settings)
    return StaticEmbedder(folder, profile=profile)


BUILTIN: dict[str, BackendFactory] = {
    "llama.cpp": _build_llama_cpp, "mlx": _build_mlx, "remote": _build_remote,
    "model2vec": _build_model2vec,
}
for _name, _factory in BUILTIN.items():
    register_backend(_name, _factory)
