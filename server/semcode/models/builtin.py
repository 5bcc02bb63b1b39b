"""The models that ship inside the semcode package: no download, no network.

`embedding_model = "builtin"` names semcode's own static code embedder (a model2vec folder
under `models/builtin/`, trained by `training/embedder` on pinned public packages); `auto`
picks it on a machine without a GPU. Its folder carries `semcode.json` next to model2vec's
files: the embedding profile it was trained with, its fusion weight and its measured
quality, which `semcode models` and the editors' status show.

Imports nothing of semcode beyond the standard library, so the registry, the backend
choice and the CLI can all ask it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

BUILTIN = "builtin"  # the setting that names the shipped embedder
_NAMES = frozenset({BUILTIN, "built-in"})
EMBEDDER_DIR = Path(__file__).with_name("builtin") / "semcode-code-static"
META_FILE = "semcode.json"


def is_builtin(spec: str) -> bool:
    """Whether a model setting names the shipped embedder (`builtin`, any case)."""
    return spec.strip().lower() in _NAMES


def embedder_folder() -> Path | None:
    """The shipped embedder's folder, or None when this installation has none (a source
    checkout whose model was removed)."""
    return EMBEDDER_DIR if (EMBEDDER_DIR / "model.safetensors").is_file() else None


def model_meta(folder: Path) -> dict[str, object]:
    """A model folder's `semcode.json` (empty when it has none or it is unreadable)."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


@cache
def builtin_quality() -> str:
    """One line on what the shipped embedder measured, from its `semcode.json` ("" when
    unknown or not shipped). Read once: it is package data, and the servers' status asks
    for it on every status notification."""
    folder = embedder_folder()
    quality = model_meta(folder).get("quality") if folder is not None else None
    return quality if isinstance(quality, str) else ""
