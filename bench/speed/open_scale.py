"""Opening a large index (issue 19): where the time and memory of one
`semcode search --no-update` go, stage by stage, at a given number of chunks:

    PYTHONPATH=server python -m bench.speed.open_scale --copies 1.45 [--copies 6] \\
        [--repeats 3] [--out FILE] [--reindex]
    PYTHONPATH=server python -m bench.speed.open_scale --kernel     (the Linux kernel:
        Debian's linux-source-6.1, prepared once by bench/speed/kernel_tree.py)

1. Builds a tree of `--copies` copies of the running Python's stdlib (its `.py` files,
   tests included; a fractional copy takes that share of the files, in path order) under
   `${XDG_CACHE_HOME:-~/.cache}/semcode-build/open-scale/tree-COPIES`, once. Copies are
   distinct files with identical text: the index holds every chunk of every copy.
2. Indexes it lexically (`embedding_model = "off"`, `reranker_model = "off"`) with the
   real `semcode index` (once; `--reindex` for a fresh cold index), recording its wall
   time and peak RSS.
3. `--repeats` times, a fresh `semcode search --no-update QUERY` process: its wall time
   and peak RSS (os.wait4), and one run of the same command inside a probe that wraps the
   stages of opening an index (inclusive seconds and the process RSS after each: see
   `STAGES`) so that the table says where the whole process's time goes.

Prints medians and writes everything to `--out` (JSON). Nothing asserts a time: the
machine may be shared (the load average is recorded). Run it with `nice`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.speed import kernel_tree

REPO = Path(__file__).resolve().parents[2]
QUERY = "parse the configuration file into a dictionary"
SETTINGS = ("--set", "embedding_model=off", "--set", "reranker_model=off")

# (label, module, attribute path): wrapped by the probe, inclusive time per call.
STAGES = (
    ("settings", "semcode.cli", "settings_from_args"),
    ("open the SQLite store", "semcode.index.store", "Store.__init__"),
    ("rollback check", "semcode.index.catch_up", "CatchUp.check_rollback"),
    ("saved chunk table (mapped; issue 19)", "semcode.index.chunk_files", "read_table"),
    ("chunk table brought up to date (Store.advance)", "semcode.index.store",
     "Store.advance"),
    ("snapshot: every chunk's row (0.2: and its tokens)", "semcode.index.store",
     "Store.snapshot"),
    ("tokens of the chunks the saved build lacks", "semcode.index.indexer",
     "Indexer._tokens_of"),
    ("lexical load (saved build)", "semcode.index.lexical", "LexicalIndex.load"),
    ("lexical reconcile", "semcode.index.lexical", "LexicalIndex.reconcile"),
    ("vectors reconcile", "semcode.index.vector_upkeep", "VectorUpkeep.reconcile"),
    ("indexer open (all of the above but settings)", "semcode.index.indexer",
     "Indexer.__init__"),
    ("catch-up check (refresh)", "semcode.index.indexer", "Indexer.refresh"),
    ("query (Engine.search)", "semcode.search.engine", "Engine.search"),
    ("close", "semcode.cli", "close_engine"),
)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "semcode-build" / "open-scale"


def stdlib_files(stdlib: Path) -> list[Path]:
    """The stdlib's .py files (tests included, no site-packages), in path order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(stdlib):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__"))
        out += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    return out


def build_tree(tree: Path, stdlib: Path, copies: float) -> None:
    """`copies` copies of the stdlib's .py files in `tree` (once: a stamp says so)."""
    stamp = json.dumps({"stdlib": str(stdlib), "copies": copies})
    stamp_file = tree / ".semcode-bench-stamp.json"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return
    if tree.exists():
        shutil.rmtree(tree)
    files = stdlib_files(stdlib)
    n, copy = int(copies * len(files)), 0
    while n > 0:
        for src in files[:n]:
            dst = tree / f"copy{copy}" / src.relative_to(stdlib)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        n, copy = n - len(files), copy + 1
    stamp_file.write_text(stamp, encoding="utf-8")


def run_measured(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `cmd` to the end: its wall seconds, exit status, stdout and stderr (the probe's
    own JSON line carries its resource numbers)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "rc": proc.returncode, "stdout": out, "stderr": err}


def run_rusage(cmd: list[str], env: dict[str, str], stdout: bool = False) -> dict[str, Any]:
    """Run `cmd`: wall, CPU and peak RSS (MB) of that process alone, via os.wait4 (and,
    with `stdout`, what it printed: through a file, so no pipe can fill up)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() if stdout else open(os.devnull, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)
        printed = ""
        if stdout:
            out.seek(0)
            printed = out.read().decode("utf-8", "replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": time.perf_counter() - started,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024, "rc": proc.returncode, "stderr": err,
            "stdout": printed}


INDEXED = re.compile(r"(\d+) chunks in ([\d.]+)s")


def probe(argv: list[str]) -> None:
    """Run `semcode` with `argv` in this process with the stages wrapped; print one JSON
    line of stage timings (inclusive) and RSS on stdout's last line."""
    t_start = float(os.environ["SEMCODE_BENCH_SPAWN"])
    t_main = time.time()
    records: list[dict[str, Any]] = []

    def rss() -> tuple[float, float]:
        fields = dict(line.split(":", 1) for line in
                      Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)

    t0, c0 = time.perf_counter(), time.process_time()
    import semcode.cli as cli  # noqa: PLC0415  (what is timed)
    import semcode.search.engine  # noqa: F401, PLC0415
    records.append({"stage": "imports (semcode.cli, search.engine)",
                    "s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                    "rss_mb": rss()[0]})
    import importlib  # noqa: PLC0415

    def wrap(label: str, module: str, attr: str) -> None:
        try:
            owner: Any = importlib.import_module(module)
        except ModuleNotFoundError:
            return  # not in this version
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        if not hasattr(owner, name):
            return  # not in this version
        fn = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            t, c = time.perf_counter(), time.process_time()
            before = rss()[0]
            try:
                return fn(*a, **k)
            finally:
                records.append({"stage": label, "s": time.perf_counter() - t,
                                "cpu_s": time.process_time() - c,
                                "rss_mb": rss()[0], "rss_delta_mb": rss()[0] - before})
        setattr(owner, name, timed)

    for stage in STAGES:
        wrap(*stage)
    t = time.perf_counter()
    with open(os.devnull, "w") as null:
        saved, sys.stdout = sys.stdout, null
        try:
            rc = cli.main(argv)
        finally:
            sys.stdout = saved
    main_s = time.perf_counter() - t
    print(json.dumps({"rc": rc, "interpreter_start_s": t_main - t_start, "main_s": main_s,
                      "peak_mb": rss()[1], "stages": records, "ended": time.time()}),
          flush=True)


def measure(tree: Path, index_dir: Path, repeats: int, reindex: bool,
            server: Path) -> dict[str, Any]:
    """Index `tree` (once), then time whole searches and one probed search per repeat,
    running semcode from `server` (a checkout's `server` folder)."""
    env = dict(os.environ, PYTHONPATH=f"{server}{os.pathsep}{REPO}",
               SEMCODE_CACHE_DIR=str(index_dir))
    py = sys.executable
    result: dict[str, Any] = {"tree": str(tree), "load_before": os.getloadavg()}
    if reindex and index_dir.exists():
        shutil.rmtree(index_dir)
    stats_file = index_dir.with_name(index_dir.name + ".cold.json")
    if not index_dir.exists():
        r = run_rusage([py, "-m", "semcode", "index", *SETTINGS, "--no-embed", str(tree)], env)
        m = INDEXED.search(r["stderr"])
        result["index"] = {k: r[k] for k in ("wall_s", "cpu_s", "peak_mb", "rc")}
        if m:
            result["index"]["chunks"] = int(m[1])
        print(f"cold index: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, "
              f"{r['peak_mb']:.0f} MB peak; {r['stderr'].strip().splitlines()[-1:]}",
              flush=True)
        stats_file.write_text(json.dumps(result["index"]), encoding="utf-8")
    elif stats_file.is_file():
        result["index"] = json.loads(stats_file.read_text(encoding="utf-8"))
    search = ["search", "--no-update", "-w", str(tree), *SETTINGS, "--mode", "lexical",
              "--json", QUERY]
    result["disk_mb"] = sum(p.stat().st_size for p in index_dir.rglob("*")
                            if p.is_file()) / 1e6
    # The first search after an upgrade converts an older saved build (not counted).
    first = run_rusage([py, "-m", "semcode", *search], env)
    result["first"] = {k: first[k] for k in ("wall_s", "cpu_s", "peak_mb", "rc")}
    result["first"]["notices"] = first["stderr"].strip().splitlines()[-3:]
    whole, probes = [], []
    for _ in range(repeats):
        r = run_rusage([py, "-m", "semcode", *search], env)
        if r["rc"] != 0:
            sys.exit(f"search failed: {r['stderr'][-2000:]}")
        whole.append({k: r[k] for k in ("wall_s", "cpu_s", "peak_mb")})
        env_probe = dict(env, SEMCODE_BENCH_SPAWN=repr(time.time()))
        p = run_measured([py, "-m", "bench.speed.open_scale", "--probe", *search], env_probe)
        ended = time.time()
        if p["rc"] != 0:
            sys.exit(f"probe failed: {p['stderr'][-2000:]}")
        probes.append(json.loads(p["stdout"].strip().splitlines()[-1]))
        probes[-1]["exit_s"] = ended - probes[-1]["ended"]
    result.update(whole=whole, probes=probes, load_after=os.getloadavg())
    return result


def summary(result: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """(stage, median wall seconds, median CPU seconds, median RSS after it in MB),
    whole-process rows first (their RSS: the peak)."""
    med = statistics.median
    whole = result["whole"]
    rows = [("whole `semcode search --no-update`", med(w["wall_s"] for w in whole),
             med(w["cpu_s"] for w in whole), med(w["peak_mb"] for w in whole))]
    probes = result["probes"]
    rows.append(("interpreter start", med(p["interpreter_start_s"] for p in probes),
                 0.0, 0.0))
    labels = list(dict.fromkeys(r["stage"] for p in probes for r in p["stages"]))
    for label in labels:
        secs, cpus, mbs = [], [], []
        for p in probes:
            mine = [r for r in p["stages"] if r["stage"] == label]
            secs.append(sum(r["s"] for r in mine))
            cpus.append(sum(r.get("cpu_s", 0.0) for r in mine))
            mbs.append(max(r["rss_mb"] for r in mine))
        rows.append((label, med(secs), med(cpus), med(mbs)))
    rows.append(("exit (interpreter teardown)", med(p["exit_s"] for p in probes), 0.0, 0.0))
    rows.append(("probe: peak RSS (VmHWM)", 0.0, 0.0, med(p["peak_mb"] for p in probes)))
    return rows


def compare(before: Path, after: Path) -> None:
    """A Markdown table of two `--out` files side by side (stage: wall s, CPU s, MB)."""
    runs = [json.loads(Path(f).read_text(encoding="utf-8")) for f in (before, after)]
    for old, new in zip(*runs, strict=True):
        chunks = old.get("index", {}).get("chunks") or new.get("index", {}).get("chunks")
        print(f"\n{chunks} chunks (`--copies {old['copies']:g}`)\n")
        print("| stage | before: wall s / CPU s / MB | after: wall s / CPU s / MB |")
        print("|---|---|---|")
        b_rows = {r[0]: r for r in summary(old)}
        for label, secs, cpu, mb in summary(new):
            b = b_rows.get(label, (label, 0.0, 0.0, 0.0))
            cells = [f"{x[1]:.3f} / {x[2]:.3f} / {x[3]:.0f}" for x in (b, (label, secs, cpu, mb))]
            print(f"| {label} | {cells[0]} | {cells[1]} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        probe(sys.argv[2:])
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=float, action="append",
                    help="stdlib copies per tree (repeatable; default 1.45)")
    ap.add_argument("--kernel", action="store_true",
                    help="measure the Linux kernel tree (Debian linux-source-6.1; "
                         "bench/speed/kernel_tree.py) instead of stdlib copies")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reindex", action="store_true", help="a fresh cold index first")
    ap.add_argument("--cache", type=Path, default=default_cache())
    ap.add_argument("--out", type=Path)
    ap.add_argument("--server", type=Path, default=REPO / "server",
                    help="the semcode sources to measure (another checkout's server/)")
    args = ap.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    results = []
    for copies in [0.0] if args.kernel else (args.copies or [1.45]):
        if args.kernel:
            tree, index_dir = kernel_tree.prepare(args.cache), args.cache / "index-kernel"
        else:
            tree, index_dir = args.cache / f"tree-{copies:g}", args.cache / f"index-{copies:g}"
            build_tree(tree, stdlib, copies)
        result = measure(tree, index_dir, args.repeats, args.reindex, args.server.resolve())
        result["copies"] = copies
        results.append(result)
        chunks = result.get("index", {}).get("chunks", "?")
        print(f"\n{tree} ({chunks} chunks, index {result['disk_mb']:.0f} MB on disk), "
              f"load {result['load_before']} -> {result['load_after']}")
        if "first" in result:
            print(f"  first search (converts an older build): {result['first']}")
        for label, secs, cpu, mb in summary(result):
            print(f"  {label:<48} {secs:8.3f} s {cpu:8.3f} s CPU {mb:8.0f} MB")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
