"""Fixtures for the language-server tests: a fixture workspace written per test, and a
server spawned over real stdio with its own cache and index directories."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from client import LspClient  # noqa: E402
from lsp_helpers import write_workspace  # noqa: E402


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., LspClient]]:
    """spawn(folders, options) -> an initialized client (killed at teardown)."""
    clients: list[LspClient] = []

    def start(folders: list[Path], options: dict[str, Any] | None = None,
              index_dir: Path | None = None, initialize: bool = True) -> LspClient:
        env = {"SEMCODE_CACHE_DIR": str(tmp_path / "cache"),
               "SEMCODE_CONFIG": str(tmp_path / "no-config.toml"), "HF_HUB_OFFLINE": "1"}
        n = len(clients)
        client = LspClient(env=env, stderr_path=tmp_path / f"server-{n}.stderr")
        clients.append(client)
        if initialize:
            opts = {"indexDir": str(index_dir or tmp_path / "index"), **(options or {})}
            client.initialize(folders, opts)
        return client

    yield start
    for client in clients:
        client.kill()
