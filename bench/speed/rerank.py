"""The rerank phase's latency on this CPU: p50/p95 per depth, for any reranker GGUF
(either recipe), at one or more pair budgets:

    PYTHONPATH=server:. python -m bench.speed.rerank MODEL.gguf [MODEL.gguf ...] \\
        [--max-tokens 128,256] [--depths 10,20,50] [--reps 7] [--threads 2] \\
        [--corpus DIR] [--out FILE.json] [--record semcode.json]

What is timed is what `Engine.rerank` spends in the model: one `score(query, documents)`
call per search over the top `depth` candidates, through the same recipe code the engine
uses (`open_reranker`; a classifier reads `Chunk.embedding_text()`, a yes/no model
`rerank_document`). The documents are real chunks (semcode's own chunker) of `--corpus`
(default: this repository's `server/` tree), taken in a fixed shuffled order; the
queries are plain-English questions, a different one per repetition. Per depth: wall
time p50/p95 and process CPU time p50/p95 (on a shared machine the CPU time of a
one-thread run is the better estimate of a quiet machine's wall time), the mean pair
length, and the measured tokens/s. The load average is recorded before and after.

`--record FILE` merges a `speed` block ({tokens_per_s, gflops, pair_tokens, threads,
max_tokens}) into a built-in model's `semcode.json` (the first model, the first
`--max-tokens`): `auto` scales that speed by the ratio of this machine's measured matmul
speed (`machine.cpu_gflops`) to the one recorded, to decide whether 20 candidates fit
`rerank_budget_ms` on a CPU. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "server") not in sys.path:
    sys.path.insert(0, str(REPO / "server"))

from semcode.chunking.chunker import chunk_file  # noqa: E402
from semcode.chunks import Chunk  # noqa: E402
from semcode.search.reranking import rerank_text  # noqa: E402

QUERIES = (
    "where is the rerank depth fitted to the latency budget",
    "how are search results merged from several workspace folders",
    "parse the settings file and validate each key",
    "which function splits camelCase identifiers into words",
    "retry a failed request to the remote server",
    "how does the index detect that another process wrote to it",
    "write a file atomically by renaming a temporary file",
    "where are editor buffers applied before a search",
    "compute the bootstrap confidence interval of a metric",
    "load a GGUF model and read its metadata",
    "cancel a pending rerank when a newer search arrives",
)


def corpus_chunks(root: Path, limit: int = 400, seed: int = 0) -> list[Chunk]:
    """Up to `limit` chunks of the source files under `root`, in a fixed shuffled order
    (symbols, module code and windows alike, as the index holds them)."""
    chunks: list[Chunk] = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".py", ".ts", ".js", ".go", ".rs", ".java", ".c", ".rb"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        chunks += chunk_file(str(path.relative_to(root)), text).chunks
    random.Random(seed).shuffle(chunks)
    return chunks[:limit]


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def time_depth(reranker: Any, chunks: list[Chunk], depth: int, reps: int) -> dict[str, Any]:
    """`reps` timed score calls (after one warm-up) of `depth` documents, a different
    query and a different window of documents each time."""
    recipe = reranker.profile.recipe
    walls, cpus = [], []
    for r in range(reps + 1):
        start = (r * depth) % max(1, len(chunks) - depth)
        texts = [rerank_text(c, recipe) for c in chunks[start:start + depth]]
        query = QUERIES[r % len(QUERIES)]
        t, c = time.perf_counter(), time.process_time()
        scores = reranker.score(query, texts)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        assert len(scores) == len(texts)
        if r:  # the first call warms caches and the thread pool
            walls.append(wall * 1000)
            cpus.append(cpu * 1000)
    return {"depth": depth, "reps": reps,
            "wall_p50_ms": statistics.median(walls), "wall_p95_ms": percentile(walls, 0.95),
            "cpu_p50_ms": statistics.median(cpus), "cpu_p95_ms": percentile(cpus, 0.95)}


def pair_tokens(reranker: Any, chunks: list[Chunk], query: str) -> float:
    """The mean tokens per pair a classifier decodes for these chunks (0 for a yes/no
    model, whose prompt is shared)."""
    if not hasattr(reranker, "pair_tokens"):
        return 0.0
    q = reranker.query_ids(query)
    recipe = reranker.profile.recipe
    return statistics.fmean(len(reranker.pair_tokens(q, rerank_text(c, recipe)))
                            for c in chunks)


def measure(model: Path, max_tokens: int, depths: list[int], reps: int, threads: int,
            chunks: list[Chunk]) -> dict[str, Any]:
    """Every depth for one model at one pair budget."""
    from semcode.models.llama_cpp import open_reranker

    reranker = open_reranker(model, n_threads=threads, n_gpu_layers=0, max_tokens=max_tokens)
    try:
        rows = [time_depth(reranker, chunks, d, reps) for d in depths]
        return {"model": str(model), "recipe": str(reranker.profile.recipe),
                "max_tokens": getattr(reranker, "max_tokens", max_tokens), "threads": threads,
                "pair_tokens": pair_tokens(reranker, chunks[:100], QUERIES[0]),
                "tokens_per_s": reranker.tokens_per_second(), "depths": rows}
    finally:
        reranker.close()


def record_speed(meta_file: Path, result: dict[str, Any]) -> None:
    """Merge the `speed` block `auto` reads into a model's `semcode.json`."""
    from semcode.models.machine import cpu_gflops

    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    meta["speed"] = {"tokens_per_s": round(float(result["tokens_per_s"]), 1),
                     "gflops": round(cpu_gflops(), 1),
                     "pair_tokens": round(float(result["pair_tokens"]), 1),
                     "threads": result["threads"], "max_tokens": result["max_tokens"],
                     "measured_by": "bench/speed/rerank.py"}
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the latency bench and print one line per model, budget and depth."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--max-tokens", default="256", help="comma list of pair budgets")
    ap.add_argument("--depths", default="10,20,50")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", type=Path, default=REPO / "server")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--record", type=Path, metavar="SEMCODE_JSON")
    args = ap.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    chunks = corpus_chunks(args.corpus)
    report: dict[str, Any] = {"load_before": os.getloadavg(), "cpus": os.cpu_count(),
                              "runs": []}
    for model in args.models:
        for max_tokens in (int(t) for t in args.max_tokens.split(",")):
            result = measure(model, max_tokens, depths, args.reps, args.threads, chunks)
            report["runs"].append(result)
            for row in result["depths"]:
                print(f"{model.name} max_tokens={max_tokens} threads={args.threads} "
                      f"pair={result['pair_tokens']:.0f} tok depth {row['depth']:>3}: "
                      f"wall p50 {row['wall_p50_ms']:6.0f} p95 {row['wall_p95_ms']:6.0f} ms; "
                      f"cpu p50 {row['cpu_p50_ms']:6.0f} p95 {row['cpu_p95_ms']:6.0f} ms",
                      flush=True)
    report["load_after"] = os.getloadavg()
    print(f"load average before {report['load_before'][0]:.1f}, "
          f"after {report['load_after'][0]:.1f} ({report['cpus']} CPUs)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    if args.record:
        record_speed(args.record, report["runs"][0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
