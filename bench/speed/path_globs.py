"""Path-glob search times (issue 22 item 5), lexical, models off, over the workspace given
as the argument, with no glob, the backtracking glob and globs at the length limit:
`Engine.search` in this process, then the same searches as round trips to a real
`semcode mcp` (stdio, the MCP client library) and a real `semcode serve --stdio` (the test
suite's LSP client), both on the index this process built.
`PYTHONPATH=server python bench/speed/path_globs.py PATH`."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semcode.config import Settings
from semcode.search.engine import Engine, SearchRequest

GLOBS: dict[str, tuple[str, ...]] = {
    "none": (),
    "*?x14 *#": ("*?" * 14 + "*#",),
    "256-char *?": (("*?" * 128)[:254] + "*#",),
    "256-char [a-z]*": ("[a-z]*" * 42,),
    "server/**": ("server/**",),
}


QUERY = "parse the config file"
REPEATS = 7
REPO = Path(__file__).resolve().parents[2]


def report(via: str, name: str, search: Callable[[], int]) -> None:
    """Time `REPEATS` calls of `search` (returns its hit count); one line."""
    times = []
    hits = 0
    for _ in range(REPEATS):
        t = time.perf_counter()
        hits = search()
        times.append((time.perf_counter() - t) * 1000)
    print_line(via, name, hits, times)


def print_line(via: str, name: str, hits: int, times: list[float]) -> None:
    """One result line: the hits, the first call's time and the median (ms)."""
    print(f"{via:6} {name:18} hits {hits:3}  first {times[0]:6.1f} ms  "
          f"median {statistics.median(times):6.1f} ms", flush=True)


def over_engine(root: Path, index_dir: str) -> None:
    """Index `root` (lexical) and time the globs through `Engine.search`."""
    settings = Settings(index_dir=index_dir, embedding_model="off", reranker_model="off")
    engine = Engine.open(root, settings)
    engine.sync()
    refs = engine.indexer.refs
    print("chunks", len(refs), "files", len({r.path for r in refs.values()}))
    for name, globs in GLOBS.items():
        report("engine", name, lambda g=globs: len(engine.search(
            SearchRequest(QUERY, mode="lexical", paths=g)).hits))
    engine.close()


def _env(index_dir: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1",
            "SEMCODE_CONFIG": os.path.join(index_dir, "no-config.toml"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "server"),
                                                        os.environ.get("PYTHONPATH")]))}


def over_mcp(root: Path, index_dir: str) -> None:
    """The same searches as `search` tool calls to `semcode mcp` over stdio."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, env=_env(index_dir),
        args=["-m", "semcode", "mcp", "-w", str(root), "--index-dir", index_dir,
              "--embedding-model", "off", "--reranker-model", "off"])

    async def run() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            for name, globs in GLOBS.items():
                times, hits = [], 0
                for _ in range(REPEATS):
                    t = time.perf_counter()
                    out = await s.call_tool("search", {"query": QUERY, "mode": "lexical",
                                                       "paths": list(globs)})
                    times.append((time.perf_counter() - t) * 1000)
                    hits = len((out.structured_content or {}).get("hits", []))
                print_line("mcp", name, hits, times)

    asyncio.run(run())


def over_lsp(root: Path, index_dir: str) -> None:
    """The same searches as `semcode/search` requests to `semcode serve --stdio`."""
    sys.path.insert(0, str(REPO / "tests" / "lsp"))
    from client import LspClient  # tests/lsp/client.py: the test suite's LSP client

    with LspClient(cmd=[sys.executable, "-m", "semcode", "serve", "--stdio"],
                   env=_env(index_dir)) as client:
        client.initialize([root], {"embeddingModel": "off", "rerankerModel": "off",
                                   "indexDir": index_dir})
        client.wait_ready(timeout=600)
        for name, globs in GLOBS.items():
            def search(g: tuple[str, ...] = globs) -> int:
                result: dict[str, Any] = client.search(QUERY, mode="lexical", paths=list(g))
                return len(result.get("items", []))
            report("lsp", name, search)
        client.close()


def main(root: Path) -> None:
    """Index `root` once (lexical, a temporary index) and time each glob three ways."""
    index_dir = tempfile.mkdtemp()
    over_engine(root, index_dir)
    over_mcp(root, index_dir)
    over_lsp(root, index_dir)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
