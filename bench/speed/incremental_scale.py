"""Incremental indexing at scale (issue 19): how long a change takes to become searchable
from the command line on a large index (the Linux kernel by default):

    PYTHONPATH=server python -m bench.speed.incremental_scale [--kernel] [--repeats 3] \\
        [--files 1000] [--out FILE]
    PYTHONPATH=server python -m bench.speed.incremental_scale --tree T --index-dir D

The index must exist (`open_scale.py --kernel` builds it); the tree is changed and put
back, never left changed (originals are restored in a `finally`, then one `semcode index`
brings the index back to the tree as it was).

1. **One file**: a uniquely named C function is appended to one file (the middle one of
   the tree's `.c` files by size), then one whole `semcode search` process (its update
   included: the default) looks the new name up. Recorded: wall and CPU seconds, peak
   RSS, whether the new function is the first hit. `--repeats` times, a new name each.
2. **A branch switch**: `--files` files (every k-th `.c`/`.h` file, a stable sample) get a
   comment with a unique word appended; one whole `semcode index`; a search for one of
   the words must find its file. Then the files are restored and `semcode index` runs
   again (switching back), timed too.

Nothing asserts a time (the machine may be shared; the load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import sys
import uuid
from pathlib import Path
from typing import Any

from bench.speed import kernel_tree
from bench.speed.open_scale import REPO, SETTINGS, default_cache, run_rusage

SKIP_DIRS = {".git", "debian"}


def source_files(tree: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The tree's files with these suffixes, in path order (junk directories left out)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(suffixes)]
    return out


def semcode(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One whole `semcode` process: wall, CPU, peak RSS, stdout."""
    r = run_rusage([sys.executable, "-m", "semcode", *args], env, stdout=True)
    if r["rc"] != 0:
        sys.exit(f"semcode {' '.join(args[:2])} failed: {r['stderr'][-2000:]}")
    return r


def one_file(tree: Path, env: dict[str, str], repeats: int) -> dict[str, Any]:
    """Step 1 (see the module docstring)."""
    files = sorted(source_files(tree, (".c",)), key=lambda p: (p.stat().st_size, str(p)))
    target = files[len(files) // 2]
    original = target.read_bytes()
    runs = []
    try:
        for n in range(repeats):
            name = f"semcode_probe_{uuid.uuid4().hex[:8]}_{n}"
            target.write_bytes(original + f"\nint {name}(void)\n{{\n\treturn {n};\n}}\n"
                               .encode())
            r = semcode(["search", "-w", str(tree), *SETTINGS, "--mode", "lexical",
                         "--json", "-k", "3", name], env)
            hits = json.loads(r["stdout"])
            runs.append({"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_mb": r["peak_mb"],
                         "first": bool(hits) and hits[0]["name"] == name})
            print(f"  one file changed -> searchable: {r['wall_s']:.2f} s wall, "
                  f"{r['cpu_s']:.2f} s CPU, {r['peak_mb']:.0f} MB; first hit: "
                  f"{runs[-1]['first']}", flush=True)
    finally:
        target.write_bytes(original)
    return {"file": str(target.relative_to(tree)), "bytes": len(original), "runs": runs}


def branch_switch(tree: Path, env: dict[str, str], count: int) -> dict[str, Any]:
    """Step 2 (see the module docstring)."""
    files = source_files(tree, (".c", ".h"))
    step = max(1, len(files) // count)
    chosen = files[::step][:count]
    originals = {p: p.read_bytes() for p in chosen}
    # One word per file, letters only: no part of it is shared with another file's (a
    # shared part would be a rare term of 1,000 short chunks, and outrank the probe).
    rng = random.Random(uuid.uuid4().int)
    words = ["zq" + "".join(rng.choices(string.ascii_lowercase, k=12)) for _ in chosen]
    result: dict[str, Any] = {"files": len(chosen)}
    try:
        for path, word in zip(chosen, words, strict=True):
            path.write_bytes(originals[path] + f"\n/* {word} */\n".encode())
        r = semcode(["index", *SETTINGS, "--no-embed", str(tree)], env)
        result["switch"] = {k: r[k] for k in ("wall_s", "cpu_s", "peak_mb")}
        print(f"  {len(chosen)} files changed -> `semcode index`: {r['wall_s']:.1f} s wall, "
              f"{r['cpu_s']:.1f} s CPU, {r['peak_mb']:.0f} MB", flush=True)
        probe = len(chosen) // 2
        found = semcode(["search", "--no-update", "-w", str(tree), *SETTINGS, "--mode",
                         "lexical", "--json", "-k", "3", words[probe]], env)
        hits = json.loads(found["stdout"])
        result["found"] = bool(hits) and hits[0]["path"] == str(
            chosen[probe].relative_to(tree))
        result["probe"] = {"file": str(chosen[probe].relative_to(tree)),
                           "top": [(h["path"], h["start_line"], h["name"], h["score"])
                                   for h in hits]}
    finally:
        for path, data in originals.items():
            path.write_bytes(data)
    r = semcode(["index", *SETTINGS, "--no-embed", str(tree)], env)
    result["switch_back"] = {k: r[k] for k in ("wall_s", "cpu_s", "peak_mb")}
    print(f"  switched back -> `semcode index`: {r['wall_s']:.1f} s wall, "
          f"{r['cpu_s']:.1f} s CPU, {r['peak_mb']:.0f} MB; the changed file found: "
          f"{result['found']} ({result.get('probe')})", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", action="store_true", help="the Linux kernel (the default)")
    ap.add_argument("--tree", type=Path)
    ap.add_argument("--index-dir", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--cache", type=Path, default=default_cache())
    ap.add_argument("--out", type=Path)
    ap.add_argument("--server", type=Path, default=REPO / "server")
    args = ap.parse_args()
    if args.tree:
        tree, index_dir = args.tree.resolve(), args.index_dir or args.cache / "index-tree"
    else:
        tree, index_dir = kernel_tree.prepare(args.cache), args.cache / "index-kernel"
    if not index_dir.exists():
        sys.exit(f"no index at {index_dir}: build it first (bench/speed/open_scale.py)")
    env = dict(os.environ, PYTHONPATH=f"{args.server.resolve()}{os.pathsep}{REPO}",
               SEMCODE_CACHE_DIR=str(index_dir))
    result: dict[str, Any] = {"tree": str(tree), "load_before": os.getloadavg()}
    print(f"{tree}: one file, {args.repeats} times", flush=True)
    result["one_file"] = one_file(tree, env, args.repeats)
    print(f"{tree}: a branch switch of {args.files} files", flush=True)
    result["branch_switch"] = branch_switch(tree, env, args.files)
    result["load_after"] = os.getloadavg()
    runs = result["one_file"]["runs"]
    if runs:
        print(f"one file -> searchable, median of {len(runs)}: "
              f"{statistics.median(r['wall_s'] for r in runs):.2f} s wall")
    print(f"load {result['load_before']} -> {result['load_after']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
