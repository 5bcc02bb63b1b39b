"""What the chunk table (issue 19, index/chunk_table.py) costs on an existing index, and
what 0.2's dict of refs cost for the same answers:

    PYTHONPATH=server nice -n 10 python -m bench.speed.chunk_table_costs TREE INDEX_DIR

TREE and INDEX_DIR as `open_scale.py` leaves them (e.g.
~/.cache/semcode-build/open-scale/tree-5 and .../index-5; index it with open_scale
first, with this checkout, so that `chunks.bin` exists). Prints the best of 3 (CPU
seconds; wall beside) for: mapping `chunks.bin`, its checksum, writing it, a stale
table's catch-up (`Store.delta`), reading every row without a table, 0.2's
`chunk_refs()` dict, and each search filter against 0.2's walk over that dict (the
answers are checked equal). Nothing is asserted about time.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semcode.config import Settings
from semcode.index.chunk_files import CHUNKS_FILE, read_table, save_table
from semcode.index.indexer import Indexer
from semcode.models.registry import ModelSet
from semcode.search.engine import Engine, SearchRequest
from semcode.search.paths import compile_globs


def timed(label: str, fn: Callable[[], Any], repeats: int = 3) -> Any:
    """Run `fn` `repeats` times; print the best CPU time (and its wall time)."""
    best: tuple[float, float] | None = None
    out = None
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn()
        took = (time.perf_counter() - wall, time.process_time() - cpu)
        best = took if best is None or took[1] < best[1] else best
    assert best is not None
    print(f"{label:<60} {best[0]:7.3f} s wall {best[1]:7.3f} s CPU", flush=True)
    return out


def old_filter(refs: dict[int, Any], req: SearchRequest) -> set[int]:
    """Engine._filter as 0.2 ran it: a walk over every ref."""
    flt = compile_globs(req.paths)
    items = list(refs.items())
    paths = flt.allowed(r.path for _, r in items) if flt is not None else None
    return {i for i, r in items
            if (not req.languages or r.language in req.languages)
            and (not req.kinds or r.kind in req.kinds)
            and (not req.contents or r.content in req.contents)
            and (paths is None or r.path in paths)}


def main() -> None:
    tree, index_dir = Path(sys.argv[1]), sys.argv[2]
    os.environ["SEMCODE_CACHE_DIR"] = index_dir
    settings = Settings.from_mapping({"embedding_model": "off", "reranker_model": "off"})
    ix = Indexer(tree, settings)
    path = ix.dir / CHUNKS_FILE
    size = path.stat().st_size
    print(f"{len(ix.refs)} chunks; {CHUNKS_FILE} {size / 1e6:.1f} MB "
          f"({size / max(1, len(ix.refs)):.0f} B a chunk)")
    timed("map and check chunks.bin", lambda: read_table(path))
    timed("... with its checksum (index --full)", lambda: read_table(path, verify=True))
    columns = ix.refs.columns()
    probe = ix.dir / "chunks-probe.bin"
    timed("write it", lambda: save_table(probe, columns, "probe", 0))
    probe.unlink()
    timed("a stale table's catch-up (Store.delta, no tokens)",
          lambda: ix.store.delta(ix.refs.ids()), 1)
    timed("no usable table: every row into columns", lambda: ix.store.snapshot(), 1)
    refs = timed("0.2: every row into a dict of ChunkRef", ix.store.chunk_refs, 1)
    engine = Engine(ix, ModelSet(settings))
    for req in (SearchRequest("x", languages=("python",)),
                SearchRequest("x", paths=("copy1/**",)),
                SearchRequest("x", kinds=(12,), contents=("test",))):
        allow = timed(f"filter {req.languages or req.paths or (req.kinds, req.contents)}",
                      lambda req=req: engine._filter(req))
        want = timed("   0.2's walk over the dict", lambda req=req: old_filter(refs, req))
        assert {i for i in refs if allow(i)} == want, req
    for req in (SearchRequest("parse the configuration file into a dictionary", mode="lexical"),
                SearchRequest("parse the configuration file", mode="lexical",
                              paths=("copy1/**",))):
        timed(f"Engine.search{' (path filter)' if req.paths else ''}",
              lambda req=req: engine.search(req))
    print("peak RSS of this probe (it built 0.2's dict too):",
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MB")
    ix.close()


if __name__ == "__main__":
    main()
