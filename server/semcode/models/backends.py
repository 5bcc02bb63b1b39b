"""Which backend runs a model: `choose_backend()` turns the `backend` setting and the
model setting into (backend, reason) for `semcode models`/`semcode status`.

A static (model2vec) model always runs on the `model2vec` backend (numpy; there is
nothing to offload) unless `backend = "remote"`. Otherwise `auto` picks, in order:
1. remote, when `remote_url` is set (the user pointed semcode at a server);
2. MLX, on Apple silicon (macOS arm64) when mlx-lm imports *and* the model setting names
   something MLX can load (a folder with config.json, or "hf:owner/repo" without a file);
   a GGUF stays on llama.cpp, which runs it on Metal anyway;
3. llama.cpp otherwise (CPU, Metal, or whatever GPU the wheel was built for).

Separate from what `auto` *models* mean (`auto.py`), from building a model
(`factory.py`) and from probing the machine (`machine.py`): this is a pure decision on
the settings, and everything else in the model room asks it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from semcode.config import Settings, model_is_off
from semcode.models.builtin import is_builtin
from semcode.models.machine import is_apple_silicon

BACKENDS = ("llama.cpp", "mlx", "remote", "model2vec")
Role = Literal["embedder", "reranker"]  # what a model is for
AUTO = "auto"


def is_static_spec(spec: str) -> bool:
    """Whether a model setting names a static (model2vec) model: `builtin` (the one
    semcode ships), a local folder in model2vec's format, or a hub repository
    ("hf:owner/repo", no file) that is one — by its cached config when it is cached, else
    by its name (minishlab/*, potion, model2vec)."""
    from .static import is_static_folder, looks_static_repo

    text = spec.strip()
    if is_builtin(text):  # loading says so in one line if this installation has none
        return True
    if model_is_off(text) or text.lower() == AUTO or text.lower().endswith(".gguf"):
        return False
    if text.startswith("hf:"):
        if not _is_hub_repository(text):
            return False
        repo_id = "/".join(p for p in text[3:].split("/") if p)
        snapshot = _cached_snapshot(repo_id)
        if snapshot is not None and (snapshot / "config.json").is_file():
            return is_static_folder(snapshot)
        return looks_static_repo(repo_id)
    p = Path(os.path.expanduser(text))
    return p.is_dir() and is_static_folder(p)


def _cached_snapshot(repo_id: str) -> Path | None:
    """The newest cached snapshot folder of a hub model repository (no network)."""
    from huggingface_hub.constants import HF_HUB_CACHE

    snaps = Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    try:
        found = [p for p in snaps.iterdir() if p.is_dir()]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def is_mlx_spec(spec: str) -> bool:
    """Whether a model setting names an MLX/HF checkpoint (not a GGUF, not static)."""
    text = spec.strip()
    if model_is_off(text) or text.lower() == AUTO or text.lower().endswith(".gguf"):
        return False
    if is_static_spec(text):
        return False
    if text.startswith("hf:"):
        return _is_hub_repository(text)
    p = Path(os.path.expanduser(text))
    return p.is_dir() and (p / "config.json").is_file()


def choose_backend(requested: str, model_spec: str = "", remote_url: str = "",
                   system: str | None = None, machine: str | None = None
                   ) -> tuple[str, str]:
    """(backend, why) for one model setting. Never raises; an explicit choice is kept
    even when unusable (loading then fails with the reason)."""
    requested = (requested or "auto").strip()
    if is_static_spec(model_spec) and requested != "remote":
        return "model2vec", "a static (model2vec) model: numpy on the CPU, no runtime needed"
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
    if _is_hub_repository(model_spec):
        # llama.cpp takes one GGUF file (hf:OWNER/REPO/FILE.gguf), never a repository,
        # and MLX runs on Apple silicon only: a repository here can only be a static
        # model, whatever its name (is_static_spec knows it by name or cached config).
        return "model2vec", ("auto: a hub repository (hf:OWNER/REPO) where MLX cannot run "
                             "is read as a static (model2vec) model; a GGUF is named with "
                             "its file")
    return "llama.cpp", "auto: llama.cpp (MLX is only chosen on Apple silicon)"


def _is_hub_repository(spec: str) -> bool:
    """`hf:OWNER/REPO` (a whole repository, no file)."""
    text = spec.strip()
    return text.startswith("hf:") and len([p for p in text[3:].split("/") if p]) == 2


def remote_url(settings: Settings, role: str) -> str:
    """The server a role's model runs on with the remote backend: `remote_url`, or for
    the reranker `remote_reranker_url` when that is set. "" when none is."""
    url = settings.remote_url or ""
    if role == "reranker":
        url = settings.remote_reranker_url or url
    return url
