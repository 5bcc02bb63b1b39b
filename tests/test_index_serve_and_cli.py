"""Issue 12 finding 1 as a user meets it: `semcode serve` and terminal commands on one
index. Nothing is lost, both answer the same, and what is left on disk equals a
rebuild."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "lsp"))
from client import LspClient  # noqa: E402

from index_harness import rebuild_state, settings, state  # noqa: E402
from semcode.index.indexer import Indexer  # noqa: E402

HELPERS = ("def parse_config_value(text):\n    return text.strip()\n\n\n"
           "def format_report_line(row):\n    return ', '.join(row)\n")
APP = "def run_application():\n    return 1\n"


def cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "server"),
           "HF_HUB_OFFLINE": "1", "SEMCODE_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "semcode", *args, "--index-dir",
                           str(tmp_path / "index"), "--embedding-model", "off",
                           "--reranker-model", "off"],
                          env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def cli_names(tmp_path: Path, root: Path, query: str, *extra: str) -> set[str]:
    code, out, err = cli(tmp_path, "search", query, "-w", str(root), "--mode", "lexical",
                         "--json", *extra)
    assert code == 0 and "Traceback" not in err, err
    return {hit["name"] for hit in json.loads(out)}


def server_names(client: LspClient, query: str) -> set[str]:
    return {item["name"] for item in client.search(query, mode="lexical")["items"]}


def eventually(fn, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_server_and_terminal_on_one_index(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "helpers.py").write_text(HELPERS)
    (root / "app.py").write_text(APP)
    assert cli(tmp_path, "index", str(root))[0] == 0
    env = {"SEMCODE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "SEMCODE_CONFIG": str(tmp_path / "no-config.toml")}
    with LspClient(env=env, stderr_path=tmp_path / "server.stderr") as client:
        client.initialize([root], {"indexDir": str(tmp_path / "index"),
                                   "embeddingModel": "off", "rerankerModel": "off"})
        client.wait_ready()
        # A disk edit, picked up by a terminal search.
        (root / "helpers.py").write_text(HELPERS + "\n\ndef load_yaml_settings(path):\n"
                                         "    pass\n")
        assert "load_yaml_settings" in cli_names(tmp_path, root, "load yaml settings")
        # An unsaved edit in the editor, in another file.
        uri = client.open(root / "app.py", APP)
        client.change(uri, 2, [{"text": "def run_unsaved_buffer_code():\n    return 2\n"}])
        assert eventually(lambda: "run_unsaved_buffer_code" in server_names(
            client, "run unsaved buffer code"))
        # The server sees the terminal's write without restarting.
        assert "load_yaml_settings" in server_names(client, "load yaml settings")
        # `index --full` while the server runs: the server keeps answering right.
        code, _, err = cli(tmp_path, "index", str(root), "--full")
        assert code == 0, err
        assert "parse_config_value" in server_names(client, "parse config value")
        assert eventually(lambda: "run_unsaved_buffer_code" in server_names(
            client, "run unsaved buffer code"))
        assert client.close() == 0
    # After the server is gone: nothing lost, a plain index agrees with a rebuild.
    assert {"parse_config_value", "load_yaml_settings"} <= cli_names(
        tmp_path, root, "parse config value load yaml settings")
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    assert state(ix, vectors=False) == rebuild_state(root, tmp_path / "rebuild",
                                                     vectors=False)
    ix.close()
