"""The states semcode reports to clients, as `StrEnum`s.

A member *is* its string (`ServeState.READY == "ready"`, `json.dumps` writes `"ready"`), so
the LSP status, the MCP status and `--json` carry the same plain strings as before; the enum
only names the closed set in one place. Imports nothing of semcode (any layer may use it).
"""

from __future__ import annotations

from enum import StrEnum


class ServeState(StrEnum):
    """A served workspace folder (LSP and MCP): starting -> indexing -> embedding -> ready,
    or error when indexing failed."""

    STARTING = "starting"
    INDEXING = "indexing"
    EMBEDDING = "embedding"
    READY = "ready"
    ERROR = "error"


class ModelState(StrEnum):
    """A model slot of the registry (`semcode/status` `models.*.state`)."""

    NOT_LOADED = "not loaded"
    LOADING = "loading"
    LOADED = "loaded"
    OFF = "off"
    MISSING = "missing"
    ERROR = "error"


class ModelFileState(StrEnum):
    """Where a role's model stands on this machine, as `semcode models` reports it (the
    `state` of each row, text and `--json`)."""

    OFF = "off"  # the setting turns the model off
    CONFIGURED = "configured"  # served remotely or by MLX: no file for semcode to fetch
    CACHED = "cached"  # the file or folder is in the local cache
    BUILTIN = "built-in"  # shipped inside the package (`builtin`): nothing to fetch
    MISSING = "missing"  # not cached yet (`semcode models --download` fetches it)
    ERROR = "error"  # the spec cannot be resolved (the row's `message` says why)


# States in which a model is not there to be used (and will not be until settings change
# or, for ERROR, a retry succeeds).
MODEL_UNAVAILABLE = (ModelState.OFF, ModelState.MISSING, ModelState.ERROR)
