"""Which backend runs the models, and building the non-llama.cpp ones from settings.

`choose_backend()` turns the `backend` setting into (backend, reason) for
`semcode models`/`semcode status`; `build_model()` constructs an MLX or remote model for
a role. The llama.cpp construction stays in `registry.ModelSet._construct`.

`auto` picks, in order:
1. remote, when `remote_url` is set (the user pointed semcode at a server);
2. MLX, on Apple silicon (macOS arm64) when mlx-lm imports *and* the model setting names
   something MLX can load (a folder with config.json, or "hf:owner/repo" without a file);
   a GGUF stays on llama.cpp, which runs it on Metal anyway;
3. llama.cpp otherwise (CPU, Metal, or whatever GPU the wheel was built for).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from .base import ModelError

BACKENDS = ("llama.cpp", "mlx", "remote")

# Settings keys this module reads (getattr with these defaults, so that an older Settings
# without them still works).
REMOTE_DEFAULTS: dict[str, Any] = {
    "remote_url": "",
    "remote_reranker_url": "",  # "" -> remote_url
    "remote_embedding_model": "",
    "remote_reranker_model": "",
    "remote_api_key_env": "SEMCODE_REMOTE_API_KEY",
    "remote_timeout_s": 30.0,
    "remote_batch_size": 32,
}


def _setting(settings: Any, key: str) -> Any:
    return getattr(settings, key, REMOTE_DEFAULTS.get(key))


def is_apple_silicon(system: str | None = None, machine: str | None = None) -> bool:
    system = system or sys.platform
    machine = machine or platform.machine()
    return system == "darwin" and machine.lower() in ("arm64", "aarch64")


def is_mlx_spec(spec: str) -> bool:
    """Whether a model setting names an MLX/HF checkpoint (not a GGUF)."""
    text = spec.strip()
    if not text or text.lower() in ("off", "none") or text.lower().endswith(".gguf"):
        return False
    if text.startswith("hf:"):
        return len([p for p in text[3:].split("/") if p]) == 2
    p = Path(os.path.expanduser(text))
    return p.is_dir() and (p / "config.json").is_file()


def choose_backend(requested: str, model_spec: str = "", remote_url: str = "",
                   system: str | None = None, machine: str | None = None
                   ) -> tuple[str, str]:
    """(backend, why) for one model setting. Never raises; an explicit choice is kept
    even when unusable (loading then fails with the reason)."""
    requested = (requested or "auto").strip()
    if requested in BACKENDS:
        why = "set by the `backend` setting"
        if requested == "mlx":
            from .mlx import mlx_available

            missing = mlx_available()
            if missing:
                why += f" ({missing})"
        if requested == "remote" and not remote_url.strip():
            why += " (but `remote_url` is empty)"
        return requested, why
    if remote_url.strip():
        return "remote", "auto: `remote_url` is set"
    if is_apple_silicon(system, machine):
        if is_mlx_spec(model_spec):
            from .mlx import mlx_available

            missing = mlx_available()
            if missing is None:
                return "mlx", "auto: Apple silicon, mlx-lm installed, MLX-format model"
            return "llama.cpp", f"auto: MLX model but {missing}; llama.cpp (Metal)"
        return "llama.cpp", "auto: a GGUF model runs on llama.cpp (Metal on Apple silicon)"
    return "llama.cpp", "auto: llama.cpp (MLX is only chosen on Apple silicon)"


def backend_for(settings: Any, role: str) -> tuple[str, str]:
    """choose_backend() for a ModelSet role ("embedder", "query_embedder", "reranker")."""
    spec = settings.reranker_model if role == "reranker" else settings.embedding_model
    return choose_backend(settings.backend, spec, _remote_url(settings, role))


def _remote_url(settings: Any, role: str) -> str:
    url = str(_setting(settings, "remote_url") or "")
    if role == "reranker":
        url = str(_setting(settings, "remote_reranker_url") or "") or url
    return url


def remote_config(settings: Any, role: str) -> Any:
    from .remote import RemoteConfig

    model_key = "remote_reranker_model" if role == "reranker" else "remote_embedding_model"
    return RemoteConfig(
        base_url=_remote_url(settings, role),
        model=str(_setting(settings, model_key) or ""),
        api_key_env=str(_setting(settings, "remote_api_key_env") or ""),
        timeout_s=float(_setting(settings, "remote_timeout_s")),
        batch_size=int(_setting(settings, "remote_batch_size")),
    )


def build_model(backend: str, settings: Any, role: str) -> Any:
    """An MLX or remote Embedder/Reranker for `role`, configured from settings.

    Raises ModelError (one line) when it cannot be built."""
    from .profiles import get_embedding_profile

    profile = None
    if role != "reranker" and settings.embedding_profile != "auto":
        profile = get_embedding_profile(settings.embedding_profile)
    if backend == "remote":
        from .remote import RemoteEmbedder, RemoteReranker

        cfg = remote_config(settings, role)
        if role == "reranker":
            return RemoteReranker(cfg)
        return RemoteEmbedder(cfg, profile=profile)
    if backend == "mlx":
        from .mlx import MlxEmbedder, MlxReranker

        offline = bool(settings.offline_mode) if hasattr(settings, "offline_mode") else False
        if role == "reranker":
            return MlxReranker(settings.reranker_model, offline=offline,
                               max_doc_tokens=settings.rerank_doc_tokens)
        return MlxEmbedder(settings.embedding_model, profile=profile,
                           batch_tokens=settings.embed_batch_tokens, offline=offline)
    raise ModelError(f"backend {backend!r} is not built here")
