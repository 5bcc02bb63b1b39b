"""Two processes on one index (issue 12): `semcode serve` edits and searches while a
terminal loop of `semcode index` / `semcode search` runs on the same workspace and index
for a bounded time. No lock error surfaces on either side, and once the dust settles both
answer exactly what a fresh index of the same text answers. Seeded
(`SEMCODE_FUZZ_SEED=N` replays a run)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lsp_helpers import LEXICAL
from test_lsp_fuzz import WORDS, expected_hits, seed, server_hits, source

RUN_S = 5.0  # how long both sides run at once
PATHS = ["a.py", "b.py", "pkg/c.py", "pkg/d.py"]
LOCK_ERRORS = ("locked for", "cannot lock", "database is locked", "Traceback")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMCODE_CACHE_DIR": str(tmp_path / "cache"),
           "SEMCODE_CONFIG": str(tmp_path / "no-config.toml")}
    return subprocess.run([sys.executable, "-m", "semcode", *args, "--index-dir",
                           str(tmp_path / "index"), "--embedding-model", "off",
                           "--reranker-model", "off"],
                          env=env, capture_output=True, text=True, timeout=120)


def cli_hits(tmp_path: Path, root: Path, word: str) -> set[Any]:
    proc = cli(tmp_path, "search", word, "-w", str(root), "--mode", "lexical", "--json",
               "-k", "200")
    assert proc.returncode == 0, proc.stderr
    return {(h["path"], h["name"], h["start_line"])
            for h in json.loads(proc.stdout)}


def diff(got: dict[str, set[Any]], want: dict[str, set[Any]], ops: list[str]) -> str:
    bad = {w: (sorted(got[w] - want[w]), sorted(want[w] - got[w])) for w in want
           if got.get(w) != want[w]}
    paths = {p for extra, missing in bad.values() for p, *_ in extra + missing}
    return f"{bad}; ops on {sorted(paths)}: {[o for o in ops if o.split()[2] in paths]}"


def test_serve_and_terminal_loop_on_one_index(spawn, tmp_path: Path) -> None:
    s = seed()
    rng = random.Random(s)
    root = tmp_path / "ws"
    disk: dict[str, str] = {}
    for rel in PATHS[:3]:
        disk[rel] = source(rng)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(disk[rel])
    assert cli(tmp_path, "index", str(root)).returncode == 0
    client = spawn([root], LEXICAL, index_dir=tmp_path / "index")
    client.wait_ready()

    stop = threading.Event()
    runs: list[subprocess.CompletedProcess[str]] = []

    def terminal() -> None:
        while not stop.is_set():
            runs.append(cli(tmp_path, "index", str(root)))
            runs.append(cli(tmp_path, "search", rng.choice(WORDS), "-w", str(root),
                            "--mode", "lexical", "--json"))

    thread = threading.Thread(target=terminal)
    thread.start()
    buffers: dict[str, str] = {}
    searches = 0
    ops: list[str] = []
    t0 = time.monotonic()
    try:
        deadline = time.monotonic() + RUN_S
        version = 1
        while time.monotonic() < deadline:
            rel = rng.choice(PATHS)
            uri = (root / rel).as_uri()
            op = rng.choice(["open", "change", "close", "disk"])
            ops.append(f"{time.monotonic() - t0:.2f} {op} {rel} open={rel in buffers}")
            if op == "open" and rel not in buffers:
                buffers[rel] = disk.get(rel, source(rng))
                client.notify("textDocument/didOpen", {"textDocument": {
                    "uri": uri, "languageId": "python", "version": 1, "text": buffers[rel]}})
            elif op == "change" and rel in buffers:
                version += 1
                buffers[rel] = source(rng)
                client.notify("textDocument/didChange", {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [{"text": buffers[rel]}]})
            elif op == "close" and rel in buffers:
                del buffers[rel]
                client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            elif op == "disk":
                created = rel not in disk
                disk[rel] = source(rng)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(disk[rel])
                client.notify("workspace/didChangeWatchedFiles", {
                    "changes": [{"uri": uri, "type": 1 if created else 2}]})
            result = client.search(rng.choice(WORDS), mode="lexical")
            assert not any("failed" in n for n in result["notices"]), (s, result["notices"])
            searches += 1
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(180)
    assert len(runs) >= 2 and searches > 20, (len(runs), searches)
    for run in runs:
        assert run.returncode == 0 and not any(e in run.stderr for e in LOCK_ERRORS), \
            f"seed {s}: {run.args[3:5]} -> {run.returncode}: {run.stderr[-500:]}"

    # The editor's view: disk text with the open buffers' text.
    want = expected_hits({**disk, **buffers}, tmp_path / "fresh1", tmp_path / "fresh-ix1")
    deadline = time.monotonic() + 20
    while (got := server_hits(client)) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == want, f"seed {s}: server differs from a fresh index: {diff(got, want, ops)}"
    # Buffers closed: the disk's text, for the server and for the terminal alike.
    for rel in list(buffers):
        client.notify("textDocument/didClose", {"textDocument": {"uri": (root / rel).as_uri()}})
    want = expected_hits(dict(disk), tmp_path / "fresh2", tmp_path / "fresh-ix2")
    deadline = time.monotonic() + 20
    while (got := server_hits(client)) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == want, f"seed {s}: server differs after closing buffers: {diff(got, want, ops)}"
    assert client.close() == 0
    for word in rng.sample(WORDS, 3):
        names = {(p, n) for p, n, _ in cli_hits(tmp_path, root, word)}
        assert names == {(p, n) for p, n, _ in want[word]}, f"seed {s}: terminal, {word!r}"


# Holds the index's write lock (as a terminal `semcode index --full` does for its whole
# scan) until its stdin closes.
HOLD_LOCK = """
import sys
from pathlib import Path
from semcode.config import Settings
from semcode.index.indexer import index_dir_for
from semcode.index.locking import WriteLock
root, index_dir = Path(sys.argv[1]), sys.argv[2]
lock = WriteLock(index_dir_for(root, Settings(index_dir=index_dir)))
with lock.hold():
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_search_that_cannot_wait_for_its_edits_says_so(spawn, tmp_path: Path) -> None:
    """Issue 22 item 4: a didChange while another process holds the write lock; the
    search answers within its wait, without the edit, and its notices say so; once the
    lock is free the edit is in, and the notice is gone."""
    from lsp_helpers import write_workspace

    root = write_workspace(tmp_path / "ws")
    client = spawn([root], LEXICAL, index_dir=tmp_path / "index")
    client.wait_ready()
    path = root / "auth/tokens.py"
    text = path.read_text()
    uri = client.open(path, text)
    assert client.search("refresh expired token", mode="lexical")["notices"] == []

    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root),
                               str(tmp_path / "index")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        edited = text.replace("def refresh_expired_token", "def renew_lapsed_credential")
        client.change(uri, 2, [{"text": edited}])
        result = client.search("renew lapsed credential", mode="lexical")
        assert "renew_lapsed_credential" not in [i["name"] for i in result["items"]]
        (notice,) = [n for n in result["notices"] if "buffer edit" in n]
        assert notice.startswith("1 buffer edit in ws sent before this search is not in its")
        assert "another semcode process is writing this index" in notice
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    deadline = time.monotonic() + 60
    while True:  # the writer takes the lock once it is free, then applies the edit
        result = client.search("renew lapsed credential", mode="lexical")
        if "renew_lapsed_credential" in [i["name"] for i in result["items"]]:
            break
        assert time.monotonic() < deadline, result
        time.sleep(0.2)
    assert result["notices"] == []
    assert client.close() == 0
