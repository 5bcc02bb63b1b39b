"""Path-glob search times (issue 22 item 5): Engine.search, lexical, models off, over the
workspace given as the argument, with no glob, the backtracking glob and globs at the
length limit. `python bench/speed/path_globs.py PATH`."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from semcode.config import Settings
from semcode.search.engine import Engine, SearchRequest

GLOBS: dict[str, tuple[str, ...]] = {
    "none": (),
    "*?x14 *#": ("*?" * 14 + "*#",),
    "256-char *?": (("*?" * 128)[:254] + "*#",),
    "256-char [a-z]*": ("[a-z]*" * 42,),
    "server/**": ("server/**",),
}


def main(root: Path) -> None:
    """Index `root` (lexical, in a temporary index) and time 7 searches per glob."""
    settings = Settings(index_dir=tempfile.mkdtemp(), embedding_model="off",
                        reranker_model="off")
    engine = Engine.open(root, settings)
    engine.sync()
    refs = engine.indexer.refs
    print("chunks", len(refs), "files", len({r.path for r in refs.values()}))
    for name, globs in GLOBS.items():
        times = []
        for _ in range(7):
            t = time.perf_counter()
            hits = engine.search(SearchRequest("parse the config file", mode="lexical",
                                               paths=globs)).hits
            times.append((time.perf_counter() - t) * 1000)
        print(f"{name:18} hits {len(hits):3}  first {times[0]:6.1f} ms  "
              f"median {statistics.median(times):6.1f} ms")
    engine.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
