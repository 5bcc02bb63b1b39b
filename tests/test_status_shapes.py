"""The published status shapes, pinned: `semcode status --json`, the MCP `status` tool's
`index` part and the LSP status's `WorkspaceStatus`, each from a real process on the
sample workspace. The core returns an `IndexStatus` record; each adapter converts it,
and these keys, their order and their types are what clients read (docs/protocol.md,
README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from semcode.config import Settings
from semcode.index.indexer import index_dir_for
from test_mcp import OFF, call, mcp_session, run_async

sys.path.insert(0, str(Path(__file__).parent / "lsp"))
from client import LspClient  # noqa: E402

INDEX_KEYS = ["root", "indexDir", "files", "chunks", "embedded", "pendingEmbeddings",
              "skippedFiles", "indexBytes"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {"SEMCODE_CACHE_DIR": str(tmp_path / "cache"),
            "SEMCODE_CONFIG": str(tmp_path / "no-config.toml"), "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(tmp_path / "hf")}


def _check_index_part(part: dict[str, Any], workspace: Path, index: Path) -> None:
    assert list(part)[:len(INDEX_KEYS)] == INDEX_KEYS, list(part)
    directory = index_dir_for(workspace.resolve(), Settings(index_dir=str(index)))
    assert (part["root"], part["indexDir"]) == (str(workspace.resolve()), str(directory))
    assert (part["files"], part["embedded"], part["pendingEmbeddings"],
            part["skippedFiles"]) == (4, 0, 0, 0)
    assert isinstance(part["chunks"], int) and part["chunks"] > 4
    assert isinstance(part["indexBytes"], int) and part["indexBytes"] > 0


def _index(workspace: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "semcode", "index", str(workspace), "--index-dir",
                    str(tmp_path / "index"), *OFF], env=_env(tmp_path), check=True,
                   capture_output=True, timeout=300)


def test_cli_status_json_shape(workspace: Path, tmp_path: Path) -> None:
    _index(workspace, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "semcode", "status", "-w", str(workspace), "--index-dir",
         str(tmp_path / "index"), "--json", *OFF],
        env=_env(tmp_path), capture_output=True, text=True, timeout=300, check=True)
    status = json.loads(proc.stdout)
    assert list(status) == [*INDEX_KEYS, "indexed"]
    _check_index_part(status, workspace, tmp_path / "index")
    assert status["indexed"] is True
    assert proc.stdout == json.dumps(status, indent=2) + "\n"  # two-space indent, as before


def test_mcp_status_shape(workspace: Path, tmp_path: Path) -> None:
    _index(workspace, tmp_path)

    async def body() -> None:
        async with mcp_session(workspace, tmp_path, *OFF) as session:
            status = await call(session, "status")
            for _ in range(100):  # the server syncs at start
                if status["state"] == "ready":
                    break
                status = await call(session, "status")
            assert list(status)[:6] == ["version", "state", "workspace", "index", "models",
                                        "degraded"]
            assert list(status["index"]) == INDEX_KEYS
            _check_index_part(status["index"], workspace, tmp_path / "index")

    run_async(body)


def test_lsp_workspace_status_shape(workspace: Path, tmp_path: Path) -> None:
    with LspClient(env=_env(tmp_path), stderr_path=tmp_path / "server.stderr") as client:
        client.initialize([workspace], {"indexDir": str(tmp_path / "index"),
                                        "embeddingModel": "off", "rerankerModel": "off"})
        status = client.wait_ready()
        assert list(status) == ["version", "protocolVersion", "state", "degraded", "models",
                                "workspaces"]
        (folder,) = status["workspaces"]
        assert list(folder) == [*INDEX_KEYS, "progress", "workspaceFolder", "state", "error",
                                "embeddedThisSession"]
        _check_index_part(folder, workspace, tmp_path / "index")
        assert (folder["workspaceFolder"], folder["state"], folder["progress"]) == \
            (workspace.as_uri(), "ready", None)
