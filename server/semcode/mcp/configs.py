"""`semcode mcp --print-config CLIENT`: the snippet each agent client needs. Printed, never
written: the user pastes it (or runs the command it shows)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

CLIENTS = ("claude", "codex", "cursor", "vscode")


def server_command() -> list[str]:
    """How this semcode is started: its own `semcode` script when that is what runs now
    (pipx, uv tool, a venv), else this interpreter with `-m semcode`. Absolute paths, so
    that an agent started from a desktop launcher (another PATH) finds it too."""
    argv0 = Path(sys.argv[0])
    if argv0.name in ("semcode", "semcode.exe") and argv0.exists():
        return [os.path.abspath(argv0)]
    return [sys.executable, "-m", "semcode"]


def snippet(client: str, workspace: Path | None = None,
            command: list[str] | None = None) -> str:
    """The text to print for `client`. Without `workspace`, the server searches the folder
    the client starts it in (Claude Code and Codex start it in the project), and the VS
    Code and Cursor snippets use their `${workspaceFolder}` variable."""
    cmd = command or server_command()
    exe, base = cmd[0], [*cmd[1:], "mcp"]
    ws = [] if workspace is None else ["-w", str(workspace)]
    if client == "claude":
        args = [*base, *ws]
        entry = {"mcpServers": {"semcode": {"type": "stdio", "command": exe, "args": args}}}
        return ("# Claude Code: run this in your project (or put the JSON below in "
                ".mcp.json)\n"
                f"claude mcp add semcode -- {shlex.join([exe, *args])}\n\n"
                f"{json.dumps(entry, indent=2)}\n")
    if client == "codex":
        args = [*base, *ws]
        return ("# Codex: add to ~/.codex/config.toml\n"
                "[mcp_servers.semcode]\n"
                f"command = {json.dumps(exe)}\n"
                f"args = {json.dumps(args)}\n")
    if client == "cursor":
        args = [*base, *(ws or ["-w", "${workspaceFolder}"])]
        entry = {"mcpServers": {"semcode": {"command": exe, "args": args}}}
        return ("// Cursor: .cursor/mcp.json in your project (or ~/.cursor/mcp.json)\n"
                f"{json.dumps(entry, indent=2)}\n")
    if client == "vscode":
        args = [*base, *(ws or ["-w", "${workspaceFolder}"])]
        entry = {"servers": {"semcode": {"type": "stdio", "command": exe, "args": args}}}
        return ("// VS Code (agent mode): .vscode/mcp.json in your project\n"
                f"{json.dumps(entry, indent=2)}\n")
    raise ValueError(f"unknown client {client!r}; one of {', '.join(CLIENTS)}")

