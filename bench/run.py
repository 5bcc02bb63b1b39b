"""semcode benchmarks: quality (docstring / prose / identifier queries over pinned real
repositories in 10+ languages, split tune/test by repository; commit → files) and speed.

    bench/run --quick        tiny models, this repo + a CPython stdlib subset, no downloads
    bench/run --quality-only [--split test] [--ablations FILE]   the benchmark that decides
    bench/run                everything: quality, commit protocol, speed at 3 sizes
    bench/run --embedder GGUF --embedding-profile generic-mean --reranker GGUF

Writes bench/out/results.json and bench/out/results.md; the last line is
"N passed, N failed" over the harness checks (exit status 1 if any failed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.quality import quality as qb  # noqa: E402
from bench.quality.corpora import cache_dir, prepared_root, sha256  # noqa: E402
from bench.speed import speed  # noqa: E402
from semcode import __version__  # noqa: E402
from semcode.config import Settings  # noqa: E402
from semcode.evaluation import (  # noqa: E402
    markdown_table,
    read_tree,
    result_json,
    run_commit,
    run_docstring,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])
QUICK_STDLIB = ("json", "logging")
MEDIUM_STDLIB = ("asyncio", "email", "unittest", "xml", "multiprocessing", "importlib",
                 "logging", "http", "urllib", "json", "concurrent", "ctypes", "idlelib",
                 "tkinter", "lib2to3", "distutils")


class Checks:
    """Each protocol or measurement that ran and produced sane output is one check."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.after: Callable[[], None] = lambda: None  # e.g. save partial results

    def run(self, name: str, fn: Callable[[], Any], sane: Callable[[Any], bool]) -> Any:
        self.after()  # what the previous checks stored
        print(f"== {name}", flush=True)
        t = time.perf_counter()
        try:
            value = fn()
            ok = sane(value)
        except Exception:  # noqa: BLE001 - a failed check is reported, not raised
            traceback.print_exc()
            value, ok = None, False
        (self.passed if ok else self.failed).append(name)
        print(f"   {'ok' if ok else 'FAILED'} ({time.perf_counter() - t:.1f}s)", flush=True)
        return value


def tiny_models() -> tuple[str, str]:
    out = Path.home() / ".cache" / "semcode-build" / "tiny-models"
    lines = subprocess.run([sys.executable, str(REPO / "tests" / "tiny_models.py"), str(out)],
                           check=True, capture_output=True, text=True).stdout.split()
    return lines[0], lines[1]


def stdlib_files(packages: tuple[str, ...]) -> dict[str, str]:
    files: dict[str, str] = {}
    for pkg in packages:
        for path in sorted((STDLIB / pkg).rglob("*.py")):
            files[f"stdlib/{path.relative_to(STDLIB).as_posix()}"] = path.read_text(
                "utf-8", "replace")
    return files


def synthetic_repo(root: Path) -> Path:
    """A three-commit repository of real stdlib code, for when this checkout has no
    usable history (a shallow CI clone, an early project)."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    root.mkdir(parents=True)
    git("init", "-q")
    git("config", "user.email", "bench@example.com")
    git("config", "user.name", "bench")
    for name in ("decoder.py", "encoder.py", "scanner.py", "__init__.py"):
        (root / "json").mkdir(exist_ok=True)
        (root / "json" / name).write_text((STDLIB / "json" / name).read_text())
    git("add", ".")
    git("commit", "-qm", "Import the JSON package")
    with open(root / "json" / "decoder.py", "a") as f:
        f.write("\n\ndef strict_loads(s):\n    return JSONDecoder(strict=True).decode(s)\n")
    git("commit", "-qam", "Decode JSON documents strictly, rejecting control characters")
    with open(root / "json" / "encoder.py", "a") as f:
        f.write("\n\ndef ascii_dumps(o):\n    return JSONEncoder(ensure_ascii=True).encode(o)\n")
    git("commit", "-qam", "Encode objects as ASCII-only JSON text")
    return root


def quality_sane(run: dict[str, Any]) -> bool:
    block = run["summary"]["all"]
    if block["n"] == 0 or "fused" not in block["stages"]:
        return False
    return all(0.0 <= m["mean"] <= 1.0 for stage in block["stages"].values()
               for m in stage.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny models, small corpora, no downloads")
    ap.add_argument("--embedder", help="GGUF path (default: tiny model in --quick, else settings)")
    ap.add_argument("--reranker", help="GGUF path or 'off'")
    ap.add_argument("--embedding-profile", default="auto")
    ap.add_argument("--max-queries", type=int, default=None)
    ap.add_argument("--rerank-depth", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--skip", action="append", default=[],
                    help="bench, docstring, commit, speed-small, speed-medium, speed-large, "
                         "models, rss, lsp (repeatable)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    ap.add_argument("--split", choices=("tune", "test", "both"), default="both",
                    help="which repositories the quality benchmark runs on (default both, "
                         "reported apart)")
    ap.add_argument("--modes", default=None,
                    help="comma list of lexical,hybrid (default: lexical, plus hybrid when "
                         "--embedder is given, except in --quick)")
    ap.add_argument("--styles", default=",".join(qb.STYLES), help="comma list of query styles")
    ap.add_argument("--corpus", action="append", default=[],
                    help="only this corpus of corpora.toml (repeatable)")
    ap.add_argument("--ablations", type=Path, default=None,
                    help="TOML of [variants.NAME] settings overrides: one run per variant "
                         "and an ablation table (--quick uses bench/quality/"
                         "ablations.example.toml)")
    ap.add_argument("--quality-only", action="store_true",
                    help="only the quality benchmark (no old docstring/commit protocols, "
                         "speed or LSP)")
    ap.add_argument("--label", default="", help="a name for the measured semcode, e.g. 0.1.0")
    args = ap.parse_args(argv)
    if args.quality_only:
        args.skip += ["docstring", "commit", "speed-small", "speed-medium", "speed-large",
                      "models", "rss", "lsp"]
    quick = args.quick
    max_queries = args.max_queries or (60 if quick else 200)
    depth = args.rerank_depth or (10 if quick else 20)
    repeats = args.repeats or (2 if quick else 3)

    if quick and not args.embedder:
        embedder, reranker = tiny_models()
    else:
        s = Settings()
        embedder = args.embedder or s.embedding_model
        reranker = args.reranker or s.reranker_model
    if args.reranker:
        reranker = args.reranker
    base = Settings.from_mapping({
        "embedding_model": embedder, "reranker_model": reranker,
        "embedding_profile": args.embedding_profile, "rerank_depth": depth,
        "rerank_budget_ms": 0, "offline": True})
    models = {role: {"path": p, "sha256": sha256(p) if Path(p).is_file() else None}
              for role, p in (("embedder", embedder), ("reranker", reranker))}
    results: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": {"platform": platform.platform(),
                    "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "python": platform.python_version()},
        "versions": {"semcode": __version__, "llama_cpp_python": speed.llama_version(),
                     "git": _git_head()},
        "label": args.label or f"semcode {__version__} ({_git_head()})",
        "models": models, "settings": {"embedding_profile": args.embedding_profile,
                                       "rerank_depth": depth, "max_queries": max_queries},
        "quality": {}, "speed": {}}
    checks = Checks()
    md: list[str] = []

    def save() -> None:
        results["checks"] = {"passed": checks.passed, "failed": checks.failed}
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
        (args.out / "results.md").write_text(render_markdown(results, md))
    checks.after = save

    with tempfile.TemporaryDirectory(prefix="semcode-bench-") as tmp_s:
        tmp = Path(tmp_s)
        settings = Settings.from_mapping({"index_dir": str(tmp / "index")}, base)

        # ------------------------------------------------------------ quality benchmark
        if "bench" not in args.skip:
            modes = (args.modes.split(",") if args.modes
                     else ["lexical", "hybrid"] if args.embedder and not quick else ["lexical"])
            ablations = args.ablations or (
                REPO / "bench" / "quality" / "ablations.example.toml" if quick else None)
            quality_bench(args, results, md, checks, tmp, base, embedder, modes, ablations)

        # ------------------------------------------------------------ quality (old protocols)
        if "docstring" not in args.skip:
            if quick:
                sources = {"semcode": read_tree(REPO / "server" / "semcode", settings),
                           "stdlib": stdlib_files(QUICK_STDLIB)}
                corpora = [{"name": "semcode+stdlib", "files": {
                    f"{k}/{p}": t for k, fs in sources.items() for p, t in fs.items()}}]
            else:
                corpora = []  # the quality benchmark above covers the real corpora
            for corpus in corpora:
                name = f"docstring/{corpus['name']}"
                run = checks.run(name, lambda c=corpus: run_docstring(
                    c["files"], settings, tmp / "doc" / c["name"], max_queries,
                    rerank=True, log=print), quality_sane)
                if run is not None:
                    results["quality"][name] = result_json(run)
                    md.append(markdown_table(name, run["summary"]))
        if "commit" not in args.skip:
            def commit() -> dict[str, Any]:
                run = run_commit(REPO, settings, tmp / "commit-self", max_queries, log=print)
                if not run["results"]:
                    print("   this repository has no usable commits: using a synthetic one")
                    repo = synthetic_repo(tmp / "synthetic-repo")
                    run = run_commit(repo, settings, tmp / "commit-synth", max_queries, log=print)
                    run["corpus"]["synthetic"] = True
                return run
            run = checks.run("commit", commit, quality_sane)
            if run is not None:
                results["quality"]["commit"] = result_json(run)
                md.append(markdown_table("commit", run["summary"]))

        # ------------------------------------------------------------ speed
        sizes = {"small": [(REPO / "server", "server"), (REPO / "tests", "tests")]}
        if not quick:
            sizes["medium"] = [(STDLIB / p, p) for p in MEDIUM_STDLIB]
            sizes["large"] = [(STDLIB, "stdlib")]
        trees: dict[str, Path] = {}
        for size, sources_ in sizes.items():
            if f"speed-{size}" in args.skip:
                continue
            tree = trees[size] = tmp / "speed" / size
            speed.copy_tree(sources_, tree)
            n = repeats if size != "large" else max(1, repeats - 1)
            bench_queries = list(dict.fromkeys(
                rec["text"] for recs in results["quality"].get("bench", {}).get(
                    "queries", {}).values() for rec in recs))[:300]
            r = checks.run(f"speed/index/{size}", lambda t=tree, n=n, q=bench_queries: (
                speed.measure_indexing(t, settings, n, q or None)),
                lambda v: v["chunks"] > 0 and v["full_index_s"]["median"] > 0)
            if r is not None:
                results["speed"].setdefault("indexing", {})[size] = r
        small = trees.get("small")
        if small is not None and "models" not in args.skip:
            queries = [q["query"] for name, run in results["quality"].items() if name != "bench"
                       for q in run["queries"]][:20 if quick else 50] or ["parse a file"]
            r = checks.run("speed/models", lambda: speed.measure_models(
                small, settings, queries, tmp / "index-models", 200 if quick else 1000,
                (10, 20) if quick else (10, 20, 50), embed_budget_s=15 if quick else None),
                lambda v: "query_latency_ms" in v)
            if r is not None:
                results["speed"]["models"] = r
        if small is not None and "rss" not in args.skip:
            def rss() -> dict[str, int]:
                idx = str(tmp / "index-models")
                off = {"index_dir": idx, "embedding_model": "off", "reranker_model": "off"}
                on = {"index_dir": idx, "embedding_model": embedder, "reranker_model": reranker,
                      "embedding_profile": args.embedding_profile, "offline": True}
                return {"without_models": speed.peak_rss(small, off),
                        "with_models": speed.peak_rss(small, on)}
            r = checks.run("speed/rss", rss, lambda v: v["without_models"] > 0)
            if r is not None:
                results["speed"]["peak_rss_bytes"] = r

        # ------------------------------------------------------------ LSP freshness
        fresh = REPO / "bench" / "lsp_freshness.py"
        if "lsp" in args.skip:
            pass
        elif fresh.is_file():
            def lsp() -> dict[str, Any]:
                cmd = [sys.executable, str(fresh), "--embedder", embedder, "--reranker", reranker,
                       "--json", str(tmp / "lsp_freshness.json")]
                if quick:
                    cmd += ["--edits", "10"]
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                out_json = tmp / "lsp_freshness.json"
                return {"rc": p.returncode, "output": p.stdout[-4000:], "stderr": p.stderr[-2000:],
                        "result": json.loads(out_json.read_text()) if out_json.is_file() else None}
            r = checks.run("lsp_freshness", lsp, lambda v: v["rc"] == 0)
            results["speed"]["lsp_freshness"] = r
        else:
            print("== lsp_freshness: bench/lsp_freshness.py does not exist yet; skipped")

    save()
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    print(f"{len(checks.passed)} passed, {len(checks.failed)} failed")
    return 1 if checks.failed else 0


def quality_bench(args: argparse.Namespace, results: dict[str, Any], md: list[str],
                  checks: Checks, tmp: Path, base: Settings, embedder: str, modes: list[str],
                  ablations: Path | None) -> None:
    """Prepare the corpora (this checkout's code, in a subprocess, so every semcode version
    sees the same workspaces and queries), then search them with the semcode on the path:
    one run per variant × mode; tables per split."""
    from bench.quality.corpora import describe, load_manifest

    quick = args.quick
    prepared = tmp / "prepared" if quick else prepared_root()
    index_root = tmp / "bench-index" if quick else cache_dir() / "index"
    cmd = [sys.executable, "-m", "bench.quality.prepare", "--out", str(prepared)]
    if quick:
        cmd += ["--local", f"semcode:python:tune:{REPO / 'server'},{REPO / 'docs'}",
                "--local", f"stdlib:python:test:{STDLIB / 'json'},{STDLIB / 'logging'}"]
        names = ["semcode", "stdlib"]
    else:
        manifest = [c for c in load_manifest()
                    if (not args.corpus or c["name"] in args.corpus)
                    and args.split in ("both", c["split"])]
        for c in manifest:
            cmd += ["--corpus", c["name"]]
        names = [c["name"] for c in manifest]
        results["corpora"] = [describe(c) for c in manifest]
    env = {**os.environ, "PYTHONPATH": str(REPO / "server")}
    ok = checks.run("bench/prepare", lambda: subprocess.run(cmd, cwd=REPO, env=env).returncode,
                    lambda rc: rc == 0)
    if ok != 0:
        return
    corpora = [qb.load_prepared(prepared / n) for n in names]
    corpora = [c for c in corpora if args.split in ("both", c["split"])]
    splits = ["tune", "test"] if args.split == "both" else [args.split]
    styles = tuple(args.styles.split(","))
    variants = qb.load_ablations(ablations) if ablations else {"default": {}}
    key = qb.code_key()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}  # mode -> variant -> records
    out: dict[str, Any] = {"label": results["label"], "code": key, "splits": splits,
                           "styles": list(styles), "modes": modes,
                           "variants": variants, "skipped_variants": {}, "timing": {},
                           "corpora": {c["corpus"]: {"language": c["language"],
                                                     "split": c["split"], **c["stats"]}
                                       for c in corpora}}
    for variant, overrides in variants.items():
        for mode in modes:
            try:
                settings = Settings.from_mapping({
                    **overrides, "index_dir": str(index_root / key / qb.index_key(overrides)),
                    "embedding_model": embedder if mode != "lexical" else "off",
                    "reranker_model": "off", "rerank": False}, base)
            except Exception as exc:  # noqa: BLE001 - e.g. a key this version lacks
                print(f"== bench/{variant}/{mode}: skipped ({exc})")
                out["skipped_variants"][f"{variant}/{mode}"] = str(exc)
                continue

            def one(settings: Settings = settings, mode: str = mode) -> dict[str, Any]:
                t = time.perf_counter()
                records: list[dict[str, Any]] = []
                index_s = 0.0
                for c in corpora:
                    r = qb.run_corpus(c, settings, mode, styles)
                    index_s += r["index_s"]
                    records += [{**rec, "split": c["split"]} for rec in r["records"]]
                return {"records": records, "index_s": index_s,
                        "total_s": time.perf_counter() - t}

            r = checks.run(f"bench/{variant}/{mode}", one, lambda v, mode=mode: bool(
                v["records"]) and all(  # a degraded search (no embedder) is not `hybrid`
                rec["mode"] == mode and min(qb.query_metrics(rec).values()) >= 0
                and max(qb.query_metrics(rec).values()) <= 1 for rec in v["records"]))
            if r is None:
                continue
            runs.setdefault(mode, {})[variant] = r["records"]
            out["timing"][f"{variant}/{mode}"] = {"index_sync_s": round(r["index_s"], 1),
                                                  "total_s": round(r["total_s"], 1),
                                                  "queries": len(r["records"])}
    first = next(iter(variants))
    out["summary"] = {}
    out["ablations"] = {}
    for mode, by_variant in runs.items():
        for split in splits:
            if first in by_variant:
                recs = [x for x in by_variant[first] if x["split"] == split]
                summary = qb.summarize(recs)
                out["summary"][f"{mode}/{split}"] = summary
                md.append(qb.markdown(summary, f"{results['label']} · {mode} · split {split}"
                                      + (f" · variant {first}" if len(variants) > 1 else "")))
            if len(by_variant) > 1:
                table = qb.ablation_table({v: [x for x in rs if x["split"] == split]
                                           for v, rs in by_variant.items()})
                out["ablations"][f"{mode}/{split}"] = table
                md.append(qb.ablation_markdown(table, f"Ablations · {mode} · split {split}"))
    if out["summary"]:
        md.insert(0, qb.overview_markdown(out["summary"], f"{results['label']} · overview"))
    out["queries"] = {f"{mode}/{v}": rs for mode, bv in runs.items() for v, rs in bv.items()}
    results["quality"]["bench"] = out


def _git_head() -> str:
    p = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def render_markdown(r: dict[str, Any], quality_tables: list[str]) -> str:
    m = r["machine"]
    lines = [f"# semcode benchmark ({r['mode']})", "",
             f"- date: {r['date']}",
             f"- machine: {m['platform']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}",
             f"- versions: semcode {r['versions']['semcode']} (git {r['versions']['git']}), "
             f"llama-cpp-python {r['versions']['llama_cpp_python']}"]
    for role, info in r["models"].items():
        lines.append(f"- {role}: `{Path(info['path']).name}` sha256 `{info['sha256']}`")
    lines.append(f"- settings: {r['settings']}")
    lines.append(f"- measured: {r.get('label', '')}")
    for c in r.get("corpora", []):
        lines.append(f"- corpus {c['name']} ({c['language']}, {c.get('split', '')}): "
                     f"`{c['file']}` sha256 `{c['sha256']}`")
    bench = r["quality"].get("bench")
    if bench:
        lines.append(f"- quality benchmark: splits {bench['splits']}, modes {bench['modes']}, "
                     f"timing {bench['timing']}")
        for k, why in bench["skipped_variants"].items():
            lines.append(f"- variant {k} skipped: {why}")
    lines += ["", "Cells: mean [95% bootstrap CI] over queries.", "", "## Quality", ""]
    for name, q in r["quality"].items():
        if name != "bench":
            lines.append(f"- {name}: corpus {q['corpus']}")
    lines += [""] + quality_tables + ["## Speed", ""]
    idx = r["speed"].get("indexing", {})
    if idx:
        lines += ["| size | files | chunks | MB | full index s (median [min, max]) | files/s | "
                  "MB/s | chunks/s | no-change s | one-file s | index bytes/chunk (no vectors) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for size, v in idx.items():
            f = v["full_index_s"]
            lines.append(
                f"| {size} | {v['files']} | {v['chunks']} | {v['mbytes']} | "
                f"{f['median']:.2f} [{f['min']:.2f}, {f['max']:.2f}] (n={f['n']}) | "
                f"{v['files_per_s']} | {v['mb_per_s']} | {v['chunks_per_s']} | "
                f"{v['nochange_reindex_s']['median']:.3f} | "
                f"{v['one_file_change_s']['median']:.3f} | "
                f"{v['index_bytes_per_chunk_no_vectors']} |")
        lines.append("")
        lines += ["First stage (lexical + fusion + ranking, no model; wall time of "
                  "`Engine.search`, limit 10):", "",
                  "| size | chunks | p50 ms | p95 ms | n |", "|---|---|---|---|---|"]
        for size, v in idx.items():
            lat = v.get("first_stage_latency_ms", {}).get("total")
            if lat:
                lines.append(f"| {size} | {v['chunks']} | {lat['p50']} | {lat['p95']} | "
                             f"{lat['n']} |")
        lines.append("")
    mdl = r["speed"].get("models", {})
    if "embedding" in mdl:
        e = mdl["embedding"]
        lines.append(f"Embedding: {e['tokens_per_s']} tokens/s ({e['chunks_per_s']} chunks/s "
                     f"over {e['chunks']} chunks) = **{e['ratio_to_raw']}×** raw prompt "
                     f"processing ({e['raw_prompt_tokens_per_s']} tokens/s, one "
                     f"{e['raw_sequence_tokens']}-token sequence).\n")
    if "query_latency_ms" in mdl:
        lines += ["| query stage | p50 ms | p95 ms | n |", "|---|---|---|---|"]
        for k, v in mdl["query_latency_ms"].items():
            lines.append(f"| {k} | {v['p50']} | {v['p95']} | {v['n']} |")
        for d, v in mdl.get("rerank", {}).get("by_depth", {}).items():
            lines.append(f"| rerank depth {d} | {v['p50']} | {v['p95']} | {v['n']} |")
        lines.append("")
    if "rerank" in mdl:
        rr = mdl["rerank"]
        lines += [f"Rerank throughput (raw prompt processing "
                  f"{rr['raw_prompt_tokens_per_s']} tokens/s):",
                  "", "| depth | pairs/s | tokens/s | ratio to raw |", "|---|---|---|---|"]
        for d, v in rr["by_depth"].items():
            lines.append(f"| {d} | {v['pairs_per_s']} | {v['tokens_per_s']} | "
                         f"{v['ratio_to_raw']} |")
        lines.append("")
    rss = r["speed"].get("peak_rss_bytes")
    if rss:
        lines.append(f"Peak RSS, index of the small tree loaded + one query: "
                     f"{rss['without_models'] / 2**20:.0f} MiB without models, "
                     f"{rss['with_models'] / 2**20:.0f} MiB with both models.\n")
    lines.append(f"Checks: {len(r['checks']['passed'])} passed, "
                 f"{len(r['checks']['failed'])} failed {r['checks']['failed'] or ''}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
