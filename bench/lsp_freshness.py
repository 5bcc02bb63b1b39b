"""How fresh is the language server's index while you type, and how fast are searches?

Spawns `semcode serve` (as an editor would, over stdio) on a workspace (default: this
repository), opens one of its files, and performs N `didChange` edits, each appending a
uniquely named function to the unsaved buffer. After each edit it searches (first phase
only, lexical mode: the new function's tokens are what make it findable at once) back to
back until the new function is returned, and records didChange → first search that
returns it. With an embedder it then polls dense-only searches until the function is found
by its vector too (didChange → embedded and searchable by meaning). Then it times
`semcode/search` per phase on a few queries (the first-stage response, and the
`semcode/searchRefined` notification when a reranker is configured). The buffer is
closed unsaved at the end: nothing is written to disk.

    python bench/lsp_freshness.py                       # lexical only, this repo
    python bench/lsp_freshness.py --tiny-models DIR     # with the tiny test models
    python bench/lsp_freshness.py --embedder A.gguf --reranker B.gguf --edits 200
    python bench/lsp_freshness.py --stages              # where each edit's time goes
    python bench/lsp_freshness.py --pad 150             # a buffer of ~170 chunks

`--stages` runs the server with timers around the steps of an edit and a search (see
`serve_traced`) and splits didChange -> searchable into them: the hops between threads,
chunking, the write lock, the SQLite write, the search, garbage-collector pauses, and
how much of it overlapped a BM25 rebuild or a status push. Run it with `nice -n 10` on a
shared machine and read the load average it prints with the numbers.

Prints a table and, last, one JSON object (also written to --json PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "lsp"))
from client import LspClient  # noqa: E402

QUERIES = [
    "reciprocal rank fusion of lexical and dense results",
    "validate settings from the editor",
    "split camelCase identifiers into words",
    "where is the embedding cache keyed by content hash",
    "debounce document changes",
]


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "median": round(statistics.median(values), 1) if values else 0.0,
            "p95": round(pct(values, 95), 1), "max": round(max(values), 1) if values else 0.0}


def server_memory(pid: int) -> dict[str, float]:
    """The server process's resident memory now and its peak so far (MB; Linux /proc)."""
    try:
        fields = dict(line.split(":", 1) for line in
                      Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    except OSError:
        return {}
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
            "peak_mb": int(fields["VmHWM"].split()[0]) / 1024}


def pick_file(root: Path) -> Path:
    for candidate in ("server/semcode/config.py", "server/semcode/chunks.py"):
        if (root / candidate).is_file():
            return root / candidate
    return next(p for p in sorted(root.rglob("*.py")) if ".venv" not in p.parts)


# ---------------------------------------------------------------------- stages (--stages)
# The server is started as `python bench/lsp_freshness.py --serve-traced TRACE`: the real
# `semcode serve` with timers wrapped around the steps of an edit and a search (nothing
# in the server changes). Each step writes "name start end" (time.monotonic, the same
# clock as this process) to TRACE; the bench splits each edit's time into stages.
TRACED: list[tuple[str, str, str]] = [  # (module, class, method) -> event name "Class.method"
    ("semcode.lsp.buffers", "BufferRouting", "did_change"),
    ("semcode.lsp.searching", "TwoPhaseSearch", "search"),
    ("semcode.lsp.session", "Session", "status"),
    ("semcode.index.indexer", "Indexer", "update_text"),
    ("semcode.index.indexer", "", "chunk_file"),  # "": a function of the module
    ("semcode.index.indexer", "", "chunk_tokens"),
    ("semcode.index.indexer", "Indexer", "_index_text"),
    ("semcode.index.store", "Store", "replace_file"),
    ("semcode.index.locking", "WriteLock", "_acquire_file"),
    ("semcode.index.indexer", "Indexer", "refresh"),
    ("semcode.index.lexical", "LexicalIndex", "rebuild"),
    # Newer servers: a BM25 build is swapped in and saved under the write lock.
    ("semcode.index.indexer", "Indexer", "_rebuild_and_save"),
    ("semcode.search.engine", "Engine", "search"),
]


def serve_traced(trace: Path, server_args: list[str]) -> int:
    import asyncio
    import functools
    import gc
    import importlib
    import threading

    out = trace.open("a", buffering=1)
    lock = threading.Lock()

    def emit(name: str, start: float, end: float) -> None:
        with lock:
            out.write(f"{name} {start:.6f} {end:.6f}\n")

    def wrap(cls: Any, attr: str) -> None:
        fn = cls.__dict__[attr]
        is_static = isinstance(fn, staticmethod)
        raw = fn.__func__ if is_static else fn
        name = f"{cls.__name__.rsplit('.', 1)[-1]}.{attr}"  # "Class.method", "module.function"
        if asyncio.iscoroutinefunction(raw):
            @functools.wraps(raw)
            async def awrapped(*a: object, **k: object) -> object:
                t = time.monotonic()
                try:
                    return await raw(*a, **k)
                finally:
                    emit(name, t, time.monotonic())
            setattr(cls, attr, awrapped)
            return

        @functools.wraps(raw)
        def wrapped(*a: object, **k: object) -> object:
            t = time.monotonic()
            try:
                return raw(*a, **k)
            finally:
                emit(name, t, time.monotonic())
        setattr(cls, attr, staticmethod(wrapped) if is_static else wrapped)

    for module, cls_name, attr in TRACED:
        mod = importlib.import_module(module)
        if not cls_name:
            if hasattr(mod, attr):
                wrap(mod, attr)
            continue
        cls = getattr(mod, cls_name, None)
        owner = next((c for c in getattr(cls, "__mro__", ()) if attr in c.__dict__), None)
        if owner is None:  # another version of the server: that stage stays empty
            print(f"lsp_freshness: not traced: {module}.{cls_name}.{attr}", file=sys.stderr)
            continue
        wrap(owner, attr)
    gc_start: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[info["generation"]] = time.monotonic()
        else:
            emit(f"gc{info['generation']}", gc_start.pop(info["generation"], time.monotonic()),
                 time.monotonic())
    gc.callbacks.append(on_gc)
    from semcode.lsp.server import serve
    return serve(server_args)


STAGES = [  # (label, how to compute it from one edit's events)
    ("client -> didChange handled", "recv"),
    ("didChange -> search handler", "to_search"),
    ("search handler -> writer starts", "to_writer"),
    ("  chunk the buffer", "chunk"),
    ("  tokenize its chunks", "tokens"),
    ("  write lock (file lock)", "lock"),
    ("  store replace_file (SQLite)", "store"),
    ("  rest of update_text", "update_rest"),
    ("writer done -> Engine.search starts", "to_reader"),
    ("  Engine.search", "search"),
    ("Engine.search -> client has answer", "respond"),
    ("gc pauses (sum)", "gc"),
    ("BM25 rebuild overlapping", "rebuild"),
    ("status push overlapping", "status"),
]


def stage_breakdown(trace: Path, windows: list[tuple[float, float]]) -> dict[str, list[float]]:
    """Per edit (client send time, client answer time): milliseconds per stage."""
    events: list[tuple[str, float, float]] = []
    for line in trace.read_text().splitlines():
        name, a, b = line.split()
        events.append((name, float(a), float(b)))
    out: dict[str, list[float]] = {key: [] for _, key in STAGES}
    for sent, answered in windows:
        inside = [e for e in events if e[1] >= sent and e[2] <= answered]

        def first(name: str, inside: list[tuple[str, float, float]] = inside
                  ) -> tuple[float, float] | None:
            return next(((a, b) for n, a, b in inside if n == name), None)

        def total(name: str, inside: list[tuple[str, float, float]] = inside) -> float:
            return sum(b - a for n, a, b in inside if n.startswith(name)) * 1000

        change, search = first("BufferRouting.did_change"), first("TwoPhaseSearch.search")
        update, engine = first("Indexer.update_text"), first("Engine.search")
        if None in (change, search, update, engine):
            continue
        assert change and search and update and engine
        ms = {"recv": change[0] - sent, "to_search": search[0] - change[0],
              "to_writer": update[0] - search[0], "to_reader": engine[0] - update[1],
              "search": engine[1] - engine[0], "respond": answered - engine[1]}
        for key, value in ms.items():
            out[key].append(value * 1000)
        out["chunk"].append(total("indexer.chunk_file"))
        out["tokens"].append(total("indexer.chunk_tokens"))
        out["lock"].append(total("WriteLock._acquire_file"))
        out["store"].append(total("Store.replace_file"))
        out["update_rest"].append((update[1] - update[0]) * 1000 - out["chunk"][-1]
                                  - out["tokens"][-1] - out["lock"][-1] - out["store"][-1])
        out["gc"].append(total("gc"))
        for key, names in (("rebuild", ("LexicalIndex.rebuild", "LexicalUpkeep._rebuild_and_save")),
                           ("status", ("Session.status",))):
            out[key].append(sum(min(b, answered) - max(a, sent) for n, a, b in events
                                if n in names and a < answered and b > sent) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--serve-traced":
        return serve_traced(Path(sys.argv[2]), sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, default=REPO)
    ap.add_argument("--edits", type=int, default=100)
    ap.add_argument("--embedder", default="off")
    ap.add_argument("--reranker", default="off")
    ap.add_argument("--tiny-models", type=Path, metavar="DIR",
                    help="write/reuse tests/tiny_models.py models in DIR and use them")
    ap.add_argument("--index-dir", type=Path, help="default: a fresh temporary directory")
    ap.add_argument("--timeout", type=float, default=30.0, help="per edit, seconds")
    ap.add_argument("--dense-timeout", type=float, default=5.0,
                    help="per edit, seconds to wait for the dense (by meaning) hit")
    ap.add_argument("--json", type=Path, help="also write the JSON result here")
    ap.add_argument("--file", help="the file to edit, relative to the workspace "
                    "(default: server/semcode/config.py); edits append Python functions")
    ap.add_argument("--pad", type=int, default=0, metavar="N",
                    help="open the buffer with N more small functions (a file of many chunks)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (index, server log, trace); it is "
                         "also kept when an edit was missed or the run failed")
    ap.add_argument("--stages", action="store_true",
                    help="time the steps of each edit inside the server (a traced server)")
    args = ap.parse_args(argv)

    if args.tiny_models:
        out = subprocess.run([sys.executable, str(REPO / "tests" / "tiny_models.py"),
                              str(args.tiny_models)], check=True, capture_output=True, text=True)
        args.embedder, args.reranker = out.stdout.split()[:2]
    root = args.workspace.resolve()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="semcode-bench-"))
    options = {"embeddingModel": args.embedder, "rerankerModel": args.reranker,
               "indexDir": str(args.index_dir or tmp / "index")}
    trace = tmp / "stages.trace"
    cmd = ([sys.executable, str(Path(__file__).resolve()), "--serve-traced", str(trace),
            "--stdio"] if args.stages else None)
    client = LspClient(cmd=cmd, env={"SEMCODE_CACHE_DIR": str(tmp / "cache")},
                       stderr_path=tmp / "server.stderr")
    try:
        t0 = time.perf_counter()
        client.initialize([root], options)
        # On an existing index the server answers from it while it checks the disk for
        # changes (its state says "indexing" until that catch-up is done).
        first_answer_s = None
        while first_answer_s is None and time.perf_counter() - t0 < 3600:
            if client.search(QUERIES[0], limit=5, rerank=False, mode="lexical")["items"]:
                first_answer_s = time.perf_counter() - t0
            elif client.status()["state"] == "ready":
                break  # a new index: nothing to answer from before it is built
            else:
                time.sleep(0.05)
        status = client.wait_ready(timeout=3600, embedded=args.embedder != "off")
        index_s = time.perf_counter() - t0
        memory_ready = server_memory(client.proc.pid)
        ws = status["workspaces"][0]
        print(f"indexed {ws['files']} files, {ws['chunks']} chunks, {ws['embedded']} embedded "
              f"in {index_s:.1f} s (index dir {options['indexDir']}); server {memory_ready}; "
              f"first search answered after {first_answer_s} s")

        path = root / args.file if args.file else pick_file(root)
        text = path.read_text(encoding="utf-8")
        text += "".join(f"\n\ndef padding_{n}(value):\n    return value + {n}\n"
                        for n in range(args.pad))
        uri = client.open(path, text)
        line = len(text.splitlines())
        freshness: list[float] = []
        dense_freshness: list[float] = []
        polls: list[int] = []
        poll_ms: list[float] = []
        windows: list[tuple[float, float]] = []  # (sent, answered), time.monotonic
        missed = 0
        tag = uuid.uuid4().hex[:8]
        for i in range(args.edits):
            name = f"freshness_probe_{tag}_{i}"
            word = f"zq{tag}w{i}"
            added = f"\n\ndef {name}(value):\n    return '{word} marker for edit {i}'\n"
            sent = time.perf_counter()
            sent_mono = time.monotonic()
            client.change(uri, i + 2, [{"range": {"start": {"line": line, "character": 0},
                                                  "end": {"line": line, "character": 0}},
                                        "text": added}])
            line += added.count("\n")
            n = 0
            while True:
                n += 1
                q0 = time.perf_counter()
                res = client.search(f"{name} {word}", limit=5, rerank=False, mode="lexical")
                poll_ms.append((time.perf_counter() - q0) * 1000)
                if any(item["name"] == name for item in res["items"]):
                    freshness.append((time.perf_counter() - sent) * 1000)
                    windows.append((sent_mono, time.monotonic()))
                    polls.append(n)
                    break
                if time.perf_counter() - sent > args.timeout:
                    missed += 1
                    break
            while args.embedder != "off":
                res = client.search(f"def {name}(value): return '{word} marker for edit {i}'",
                                    limit=10, rerank=False, mode="dense")
                if any(item["name"] == name for item in res["items"]):
                    dense_freshness.append((time.perf_counter() - sent) * 1000)
                    break
                if time.perf_counter() - sent > args.dense_timeout:
                    break
                time.sleep(0.02)

        first_ms: list[float] = []
        refined_ms: list[float] = []
        reranked = 0
        for _ in range(3):
            for query in QUERIES:
                since = time.monotonic()
                q0 = time.perf_counter()
                res = client.search(query)
                first_ms.append((time.perf_counter() - q0) * 1000)
                if res["rerankPending"]:
                    ref = client.wait_for("semcode/searchRefined",
                                          lambda p, sid=res["searchId"]: p["searchId"] == sid,
                                          timeout=600, since=since)
                    refined_ms.append((time.perf_counter() - q0) * 1000)
                    reranked += bool(ref["reranked"])
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        memory_end = server_memory(client.proc.pid)
        rc = client.close()
    finally:
        client.kill()

    result = {
        "workspace": str(root), "file": str(path.relative_to(root)),
        "embedder": args.embedder, "reranker": args.reranker,
        "files": ws["files"], "chunks": ws["chunks"], "index_s": round(index_s, 2),
        "first_answer_s": first_answer_s,
        "server_memory_ready": memory_ready, "server_memory_end": memory_end,
        "edits": args.edits, "pad": args.pad, "missed": missed,
        "freshness_ms": summary(freshness),
        "embedded_freshness_ms": summary(dense_freshness),
        "found_by_meaning": len(dense_freshness),
        "polls_per_edit": summary([float(p) for p in polls]),
        "search_first_phase_ms_during_edits": summary(poll_ms),
        "search_first_phase_ms": summary(first_ms),
        "search_refined_ms": summary(refined_ms), "reranked": reranked,
        "server_exit": rc,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    rows = [("didChange -> searchable", result["freshness_ms"]),
            ("didChange -> found by meaning (dense)", result["embedded_freshness_ms"]),
            ("search, first phase (while editing)", result["search_first_phase_ms_during_edits"]),
            ("search, first phase", result["search_first_phase_ms"]),
            ("search, refined (reranked)", result["search_refined_ms"])]
    print(f"\n{'ms':<38}{'n':>6}{'median':>10}{'p95':>10}{'max':>10}")
    for label, s in rows:
        print(f"{label:<38}{s['n']:>6}{s['median']:>10}{s['p95']:>10}{s['max']:>10}")
    print(f"server memory when ready {memory_ready}, at the end {memory_end}")
    print(f"missed edits: {missed}/{args.edits}; load average before {result['loadavg_before']}, "
          f"after {result['loadavg_after']}")
    if args.stages:
        stages = stage_breakdown(trace, windows)
        result["stages_ms"] = {key: summary(stages[key]) for _, key in STAGES}
        print(f"\n{'stages of didChange -> searchable, ms':<38}"
              f"{'n':>6}{'median':>10}{'p95':>10}{'max':>10}")
        for label, key in STAGES:
            st = result["stages_ms"][key]
            print(f"{label:<38}{st['n']:>6}{st['median']:>10}{st['p95']:>10}{st['max']:>10}")
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.keep or missed:
        print(f"kept {tmp}", file=sys.stderr)
    else:  # an index per run adds up on a shared machine
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
