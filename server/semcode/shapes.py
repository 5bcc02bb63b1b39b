"""The published JSON shapes that more than one adapter makes (the language server and the
MCP server report their models alike). Shapes one adapter alone makes live in it
(`lsp/convert.py`, `mcp/service.py`, `cli.py`)."""

from __future__ import annotations

from collections.abc import Mapping

from semcode.kinds import Role
from semcode.models.registry import ModelStatus


def models_json(statuses: Mapping[Role, ModelStatus]) -> dict[str, dict[str, object]]:
    """The `models` part of a status (the language server's `semcode/status` and MCP's
    `status` tool): per role its state and why, the setting and what `auto` chose, the
    backend, and the loaded model."""
    out: dict[str, dict[str, object]] = {}
    for role, m in statuses.items():
        entry: dict[str, object] = {"state": m.state.value, "message": m.message,
                                    "spec": m.spec}
        if m.choice:  # `auto` was resolved for this machine: to what, and why
            entry["setting"], entry["choice"] = m.setting, m.choice
        if m.backend:
            entry["backend"], entry["backend_reason"] = m.backend, m.backend_reason
        if m.info is not None:
            entry.update(identity=m.info.identity, backend=m.info.backend,
                         device=m.info.device, path=m.info.path)
            if m.info.dims is not None:
                entry["dims"] = m.info.dims
        if m.builtin:
            entry["builtin"] = True
            if m.quality:
                entry["quality"] = m.quality
        out[role.value] = entry
    return out
