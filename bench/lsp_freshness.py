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

Prints a table and, last, one JSON object (also written to --json PATH).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

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


def pick_file(root: Path) -> Path:
    for candidate in ("server/semcode/config.py", "server/semcode/chunks.py"):
        if (root / candidate).is_file():
            return root / candidate
    return next(p for p in sorted(root.rglob("*.py")) if ".venv" not in p.parts)


def main(argv: list[str] | None = None) -> int:
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
    args = ap.parse_args(argv)

    if args.tiny_models:
        out = subprocess.run([sys.executable, str(REPO / "tests" / "tiny_models.py"),
                              str(args.tiny_models)], check=True, capture_output=True, text=True)
        args.embedder, args.reranker = out.stdout.split()[:2]
    root = args.workspace.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="semcode-bench-"))
    options = {"embeddingModel": args.embedder, "rerankerModel": args.reranker,
               "indexDir": str(args.index_dir or tmp / "index")}
    client = LspClient(env={"SEMCODE_CACHE_DIR": str(tmp / "cache")},
                       stderr_path=tmp / "server.stderr")
    try:
        t0 = time.perf_counter()
        client.initialize([root], options)
        status = client.wait_ready(timeout=3600, embedded=args.embedder != "off")
        index_s = time.perf_counter() - t0
        ws = status["workspaces"][0]
        print(f"indexed {ws['files']} files, {ws['chunks']} chunks, {ws['embedded']} embedded "
              f"in {index_s:.1f} s (index dir {options['indexDir']})")

        path = pick_file(root)
        text = path.read_text(encoding="utf-8")
        uri = client.open(path, text)
        line = len(text.splitlines())
        freshness: list[float] = []
        dense_freshness: list[float] = []
        polls: list[int] = []
        poll_ms: list[float] = []
        missed = 0
        tag = uuid.uuid4().hex[:8]
        for i in range(args.edits):
            name = f"freshness_probe_{tag}_{i}"
            word = f"zq{tag}w{i}"
            added = f"\n\ndef {name}(value):\n    return '{word} marker for edit {i}'\n"
            sent = time.perf_counter()
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
        rc = client.close()
    finally:
        client.kill()

    result = {
        "workspace": str(root), "file": str(path.relative_to(root)),
        "embedder": args.embedder, "reranker": args.reranker,
        "files": ws["files"], "chunks": ws["chunks"], "index_s": round(index_s, 2),
        "edits": args.edits, "missed": missed,
        "freshness_ms": summary(freshness),
        "embedded_freshness_ms": summary(dense_freshness),
        "found_by_meaning": len(dense_freshness),
        "polls_per_edit": summary([float(p) for p in polls]),
        "search_first_phase_ms_during_edits": summary(poll_ms),
        "search_first_phase_ms": summary(first_ms),
        "search_refined_ms": summary(refined_ms), "reranked": reranked,
        "server_exit": rc,
    }
    rows = [("didChange -> searchable", result["freshness_ms"]),
            ("didChange -> found by meaning (dense)", result["embedded_freshness_ms"]),
            ("search, first phase (while editing)", result["search_first_phase_ms_during_edits"]),
            ("search, first phase", result["search_first_phase_ms"]),
            ("search, refined (reranked)", result["search_refined_ms"])]
    print(f"\n{'ms':<38}{'n':>6}{'median':>10}{'p95':>10}{'max':>10}")
    for label, s in rows:
        print(f"{label:<38}{s['n']:>6}{s['median']:>10}{s['p95']:>10}{s['max']:>10}")
    print(f"missed edits: {missed}/{args.edits}")
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
