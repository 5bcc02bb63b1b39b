"""The static tier at 100k chunks (issue 11's speed and footprint targets), end to end
with the real commands:

    PYTHONPATH=server python -m bench.speed.static_scale \\
        [--model ~/.cache/semcode-build/m2v-all-minilm-l6-v2] \\
        [--node-modules clients/vscode/node_modules] [--repeats 3] [--out FILE]

1. Builds the tree once from local files (no download): the running Python's stdlib with
   its tests, TypeScript's npm package and the `@azure @babel @types @typespec @vitest
   @vscode` packages of the VS Code client's node_modules (`npm ci` in clients/vscode),
   into `${XDG_CACHE_HOME:-~/.cache}/semcode-build/speed-static/tree` (≈106k chunks).
2. `semcode index TREE` cold (a fresh SEMCODE_CACHE_DIR: no index, no embedding cache),
   `--repeats` times: wall, CPU and peak RSS of the process, chunks and embedded chunks
   from its own output. Then `semcode index` again on the last one: it must say
   `0 changed` and `embedded 0 chunks` (checked; the run fails otherwise).
3. Embedding alone: every chunk's embedding text from that index through a fresh
   `StaticEmbedder` (its word cache cold) in the engine's batch size, `--repeats` times;
   and once more warm.
4. Query embedding: 60 distinct queries, each once on a fresh instance (cold), then again.
5. The language server (`semcode serve --stdio`, driven by tests/lsp/client.py) on that
   index: time to ready, `semcode/search` round trips, and its RSS (VmRSS, VmHWM from
   /proc) with the index loaded and after the searches.

Prints a table of medians and writes everything to `--out` (JSON). Nothing here
asserts a time; the load average is recorded before and after, since the machine may be
shared. Run it with `nice`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NODE_PACKAGES = ("typescript", "@azure", "@babel", "@types", "@typespec", "@vitest", "@vscode")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "site-packages", "node_modules", ".git")

QUERIES = (
    "parse the configuration file into a dictionary", "open a network connection with a timeout",
    "where is the retry logic for failed requests", "encode objects as JSON text",
    "read lines from a file lazily", "how do we escape html special characters",
    "handle keyboard interrupt and clean up", "compare two version strings",
    "parse an http cookie header", "retry with exponential backoff",
    "compile a regular expression pattern", "read a member of a zip archive",
    "create a temporary directory and remove it afterwards", "format a date in ISO 8601",
    "acquire a lock with a timeout", "spawn a subprocess and capture its output",
    "resolve a module specifier to a file", "check the type of a call expression",
    "emit declaration files for a program", "watch a directory for file changes",
    "decode base64 text", "compute a sha256 digest of a file", "sort a list in place stably",
    "merge two dictionaries recursively", "split a path into directory and name",
    "print a traceback for the current exception", "authenticate with a client secret",
    "refresh an expired access token", "serialize a request body as form data",
    "cancel a pending promise with an abort signal", "retry policy for throttled requests",
    "render a code frame around an error location", "validate an identifier name character",
    "mock a module in a test", "compare snapshots of rendered output",
    "package an extension into a vsix file", "sign a package with a certificate",
    "unified diff between two sequences of lines", "decompress a gzip stream",
    "send an email over smtp", "parse command line arguments with subcommands",
    "thread pool executor map over items", "weak reference cache of objects",
    "pretty print nested data structures", "tokenize python source code",
    "walk an abstract syntax tree", "load a shared library with ctypes",
    "calendar of a month as text", "round a decimal to two places",
    "queue with a maximum size for producers and consumers",
    "percent-encode a query string", "guess the mime type of a file name",
    "read a csv file with a header row", "unit test assertion for raised exceptions",
    "event loop runs a coroutine until complete", "signal handler for SIGTERM",
    "locale aware string comparison", "memory mapped file access",
    "generate a random uuid", "schedule a callback after a delay",
)
LSP_QUERIES = QUERIES[:10]
PROFILE = "auto"  # the embedding_profile setting (--profile), the same in every step


def static_embedder(model: Path) -> Any:
    """A fresh StaticEmbedder of `model` with the run's profile (a cold word cache)."""
    from semcode.models.profiles import get_embedding_profile
    from semcode.models.static import StaticEmbedder

    profile = None if PROFILE == "auto" else get_embedding_profile(PROFILE)
    return StaticEmbedder(model, profile=profile)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "semcode-build" / "speed-static"


def build_tree(tree: Path, stdlib: Path, node_modules: Path) -> dict[str, Any]:
    """Copy the sources into `tree` once (a stamp records what went in)."""
    sources = [(stdlib, "stdlib")] + [(node_modules / p, f"js/{p}") for p in NODE_PACKAGES]
    stamp = {"sources": [[str(s), name] for s, name in sources]}
    stamp_file = tree / ".semcode-bench-stamp.json"
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return stamp
    missing = [str(s) for s, _ in sources if not s.is_dir()]
    if missing:
        sys.exit(f"missing sources: {', '.join(missing)} (for node_modules: `npm ci` in "
                 f"clients/vscode, or --node-modules DIR)")
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for src, name in sources:
        shutil.copytree(src, tree / name, ignore=IGNORE, symlinks=True)
    # The tree is the workspace: no .gitignore of its own, nothing above it in git.
    stamp_file.write_text(json.dumps(stamp), encoding="utf-8")
    return stamp


INDEXED = re.compile(r"indexed .*?: (\d+) files \((\d+) changed, (\d+) removed, (\d+) skipped\), "
                     r"(\d+) chunks in ([\d.]+)s")
EMBEDDED = re.compile(r"embedded (\d+) chunks in ([\d.]+)s \((\d+) pending\)")


def parse_index_output(stderr: str) -> dict[str, Any]:
    """The numbers `semcode index` prints on stderr."""
    out: dict[str, Any] = {}
    m = INDEXED.search(stderr)
    if m:
        out.update(files=int(m[1]), changed=int(m[2]), removed=int(m[3]), skipped=int(m[4]),
                   chunks=int(m[5]), sync_s=float(m[6]))
    m = EMBEDDED.search(stderr)
    if m:
        out.update(embedded=int(m[1]), embed_s=float(m[2]), pending=int(m[3]))
    return out


def run_measured(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `cmd` to the end: wall seconds, CPU seconds and peak RSS of that process alone
    (os.wait4), its stderr."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "stderr": err}


def semcode_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMCODE_")}
    env.update(SEMCODE_CACHE_DIR=str(cache), SEMCODE_CONFIG=str(cache / "no-config.toml"),
               PYTHONPATH=os.pathsep.join([str(REPO / "server"), env.get("PYTHONPATH", "")]))
    return env


def index_runs(tree: Path, model: Path, work: Path, repeats: int) -> tuple[list[dict[str, Any]],
                                                                          list[dict[str, Any]],
                                                                          Path]:
    """`repeats` cold `semcode index` runs, then as many no-change runs on the last index;
    returns both lists and the last index's cache folder."""
    cmd = [sys.executable, "-m", "semcode", "index", str(tree), "--embedding-model", str(model),
           "--reranker-model", "off", "--embedding-profile", PROFILE]
    cold: list[dict[str, Any]] = []
    cache = work / "cache"
    for n in range(repeats):
        if cache.exists():
            shutil.rmtree(cache)
        cache.mkdir(parents=True)
        run = run_measured(cmd, semcode_env(cache))
        run.update(parse_index_output(run.pop("stderr")))
        cold.append(run)
        print(f"  cold index {n + 1}/{repeats}: {run}", flush=True)
    again: list[dict[str, Any]] = []
    for n in range(repeats):
        run = run_measured(cmd, semcode_env(cache))
        text = run.pop("stderr")
        run.update(parse_index_output(text))
        again.append(run)
        print(f"  no-change index {n + 1}/{repeats}: {run}", flush=True)
        if run.get("changed") != 0 or run.get("embedded") != 0:
            sys.exit(f"a no-change run re-indexed or re-embedded something:\n{text}")
    return cold, again, cache


def embedding_speed(cache: Path, tree: Path, model: Path, repeats: int) -> dict[str, Any]:
    """Every chunk's embedding text through a fresh StaticEmbedder per repeat (cold word
    cache), in the engine's batches; then one warm pass."""
    os.environ["SEMCODE_CACHE_DIR"] = str(cache)
    from semcode.config import Settings
    from semcode.index.indexer import Indexer

    indexer = Indexer(tree, Settings.from_mapping({"embedding_model": str(model),
                                                   "embedding_profile": PROFILE,
                                                   "reranker_model": "off"}))
    try:
        ids = sorted(indexer.store.chunk_refs())
        found = indexer.store.embedding_texts(ids)
        texts = [found[i] for i in ids if i in found]
    finally:
        indexer.close()
    def one_pass(embedder: Any) -> tuple[float, float]:
        """(chunks per second of wall time, per second of this process's CPU time)."""
        batch = int(embedder.batch_chunks)
        t, c = time.perf_counter(), time.process_time()
        for start in range(0, len(texts), batch):
            embedder.embed_documents(texts[start:start + batch])
        return len(texts) / (time.perf_counter() - t), len(texts) / (time.process_time() - c)

    cold = [one_pass(static_embedder(model)) for _ in range(repeats)]
    warm_embedder = static_embedder(model)
    one_pass(warm_embedder)
    warm = one_pass(warm_embedder)
    return {"chunks": len(texts), "cold_chunks_per_s": [round(w) for w, _ in cold],
            "cold_median": round(statistics.median(w for w, _ in cold)),
            "cold_per_cpu_s_median": round(statistics.median(c for _, c in cold)),
            "warm_chunks_per_s": round(warm[0]), "warm_per_cpu_s": round(warm[1]),
            "mean_chars": round(sum(map(len, texts)) / max(1, len(texts)))}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def query_latency(model: Path) -> dict[str, Any]:
    """embed_query per distinct query on a fresh instance (cold), then the same again."""

    embedder = static_embedder(model)
    out: dict[str, Any] = {"n": len(QUERIES)}
    for label in ("cold", "warm"):
        ms = []
        for q in QUERIES:
            t = time.perf_counter()
            embedder.embed_query(q)
            ms.append((time.perf_counter() - t) * 1000)
        out[label] = {"p50_ms": round(pct(ms, 50), 3), "p95_ms": round(pct(ms, 95), 3)}
    return out


def proc_memory(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024)
    return fields


def lsp_server(tree: Path, model: Path, cache: Path) -> dict[str, Any]:
    """`semcode serve --stdio` on the existing index: ready time, search round trips, RSS."""
    sys.path.insert(0, str(REPO / "tests" / "lsp"))
    from client import LspClient  # tests/lsp/client.py: the test suite's LSP client

    cmd = [sys.executable, "-m", "semcode", "serve", "--stdio"]
    with LspClient(cmd=cmd, env=semcode_env(cache),
                   stderr_path=cache / "lsp-stderr.log") as client:
        t = time.perf_counter()
        client.initialize([tree], {"embeddingModel": str(model), "rerankerModel": "off",
                                   "embeddingProfile": PROFILE})
        status = client.wait_ready(timeout=900, embedded=True)
        ready_s = time.perf_counter() - t
        loaded = proc_memory(client.proc.pid)
        ms, modes = [], set()
        for n_pass in range(2):
            for q in LSP_QUERIES:
                t = time.perf_counter()
                result = client.search(q)
                if n_pass:
                    ms.append((time.perf_counter() - t) * 1000)
                modes.add(result.get("mode"))
        after = proc_memory(client.proc.pid)
        folder = status["workspaces"][0]
        embedder = status.get("models", {}).get("embedder", {})
        client.close()
    return {"ready_s": round(ready_s, 1), "chunks": folder.get("chunks"),
            "embedded": folder.get("embedded"), "modes": sorted(str(m) for m in modes),
            "embedder": {k: embedder.get(k) for k in ("state", "backend", "spec")},
            "rss_mb_loaded": loaded.get("VmRSS"), "rss_mb_after_searches": after.get("VmRSS"),
            "peak_rss_mb": after.get("VmHWM"),
            "search_ms": {"p50": round(pct(ms, 50), 1), "p95": round(pct(ms, 95), 1),
                          "n": len(ms)}}


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if key in r]
    return round(statistics.median(values), 2) if values else float("nan")


def table(result: dict[str, Any]) -> str:
    cold, again = result["cold_index"], result["no_change_index"]
    emb, q, lsp = result["embedding"], result["query_embedding"], result["lsp"]
    rows = [
        ("tree", f"{median_of(cold, 'files'):.0f} files, {median_of(cold, 'chunks'):.0f} "
                 f"chunks ({median_of(cold, 'embedded'):.0f} distinct embedded)", ""),
        ("cold index, wall (chunks + BM25 + vectors)", f"{median_of(cold, 'wall_s')} s",
         "< 90 s"),
        ("  of which sync (chunk + BM25) / embed", f"{median_of(cold, 'sync_s')} s / "
                                                   f"{median_of(cold, 'embed_s')} s", ""),
        ("  CPU time / peak RSS of `semcode index`",
         f"{median_of(cold, 'cpu_s')} s / {median_of(cold, 'peak_rss_mb'):.0f} MB", ""),
        ("no-change index: wall / re-embedded", f"{median_of(again, 'wall_s')} s / "
                                                f"{median_of(again, 'embedded'):.0f} chunks", "0"),
        ("embedding alone, cold word cache", f"{emb['cold_median']:,} chunks/s "
                                             f"({emb['chunks']:,} chunks)", ">= 5,000"),
        ("  the same per CPU second (one core)", f"{emb['cold_per_cpu_s_median']:,} chunks/s",
         ""),
        ("embedding alone, warm (wall / per CPU second)",
         f"{emb['warm_chunks_per_s']:,} / {emb['warm_per_cpu_s']:,} chunks/s", ""),
        ("query embedding p50 / p95 (cold)", f"{q['cold']['p50_ms']} / {q['cold']['p95_ms']} ms",
         "< 2 ms"),
        ("query embedding p50 / p95 (warm)", f"{q['warm']['p50_ms']} / {q['warm']['p95_ms']} ms",
         ""),
        ("LSP server: ready on the existing index", f"{lsp['ready_s']} s", ""),
        ("LSP server: semcode/search p50 / p95", f"{lsp['search_ms']['p50']} / "
                                                 f"{lsp['search_ms']['p95']} ms", ""),
        ("LSP server RSS: loaded / after searches / peak",
         f"{lsp['rss_mb_loaded']} / {lsp['rss_mb_after_searches']} / {lsp['peak_rss_mb']} MB",
         "< 600 MB"),
    ]
    lines = ["| measure | median | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path,
                    default=Path.home() / ".cache/semcode-build/m2v-all-minilm-l6-v2",
                    help="a static (model2vec) model folder")
    ap.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    ap.add_argument("--node-modules", type=Path,
                    default=REPO / "clients" / "vscode" / "node_modules")
    ap.add_argument("--work", type=Path, default=default_cache())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", default="auto",
                    help="embedding_profile (static-mean, static-code-words; auto: the model's)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "static-scale.json")
    args = ap.parse_args(argv)
    global PROFILE
    PROFILE = args.profile
    model = args.model.expanduser().resolve()
    if not model.is_dir():
        sys.exit(f"no static model at {model} (bench/README.md: distilling one)")
    tree = args.work / "tree"
    load_before = os.getloadavg()
    stamp = build_tree(tree, args.stdlib, args.node_modules)
    print(f"tree: {tree}", flush=True)
    cold, again, cache = index_runs(tree, model, args.work, args.repeats)
    emb = embedding_speed(cache, tree, model, args.repeats)
    print(f"  embedding: {emb}", flush=True)
    q = query_latency(model)
    print(f"  query embedding: {q}", flush=True)
    lsp = lsp_server(tree, model, cache)
    print(f"  lsp: {lsp}", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": platform.platform(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "model": str(model), "profile": PROFILE, "sources": stamp["sources"],
        "repeats": args.repeats,
        "cold_index": cold, "no_change_index": again, "embedding": emb,
        "query_embedding": q, "lsp": lsp,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print()
    print(f"load average before {result['load_avg_before']}, after {result['load_avg_after']} "
          f"({result['cpus']} CPUs); medians of {args.repeats}")
    print(table(result))
    print(f"\nall numbers: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
