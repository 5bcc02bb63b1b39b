"""Do an agent's MCP server and the editor's language server agree, minutes on end?

Spawns `semcode serve` (over stdio, as an editor would) and `semcode mcp` (over stdio,
driven by the official MCP SDK's client, as an agent would) on one workspace and one
index directory (default: a copy of the CPython stdlib's `email` package). For
`--seconds` it loops: write a new function into one of a few files on disk, tell the
language server (`workspace/didChangeWatchedFiles`; the MCP server notices by itself),
then ask both the same question and compare their top `--limit` hits (path, line,
symbol, score). Each round waits until both have seen the edit (the new function is
found) before comparing, so a difference is a disagreement, not lag.

    python bench/mcp_lsp_agreement.py --seconds 180

Prints rounds, agreements, disagreements (the first few shown), tool errors, and whether
either server's log mentions a lock error or a traceback; exits 1 on any of those.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "lsp"))
from client import LspClient  # noqa: E402

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa")
OFF = ["--embedding-model", "off", "--reranker-model", "off"]

Hit = tuple[str, int, str, float]


def default_workspace() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]) / "email"


def mcp_hits(result: Any) -> list[Hit]:
    return [(h["path"], h["start_line"], h["symbol"], round(h["score"], 4))
            for h in result.structured_content["hits"]]


def lsp_hits(lsp: LspClient, query: str, limit: int) -> list[Hit]:
    items = lsp.search(query, limit=limit, mode="lexical")["items"]
    return [(i["path"], i["range"]["start"]["line"] + 1,
             f"{i['containerName']}.{i['name']}" if i["containerName"] else i["name"],
             round(i["score"], 4)) for i in items]


async def until_found(ask: Any, name: str, timeout: float = 15.0) -> list[Hit]:
    """Ask until the top hit is `name` (the server has seen the edit) or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        hits = await ask()
        if (hits and hits[0][2] == name) or time.monotonic() > deadline:
            return hits
        await anyio.sleep(0.05)


async def run(args: argparse.Namespace, work: Path) -> int:
    ws = work / "ws"
    shutil.copytree(args.workspace, ws / args.workspace.name)
    env = {**os.environ, "SEMCODE_CACHE_DIR": str(work / "cache"),
           "SEMCODE_CONFIG": str(work / "none.toml"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO / "server")}
    lsp = LspClient(env=env, stderr_path=work / "lsp.stderr")
    lsp.initialize([ws], {"indexDir": str(work / "index"), "embeddingModel": "off",
                          "rerankerModel": "off"})
    lsp.wait_ready(timeout=300)
    params = StdioServerParameters(
        command=sys.executable, env=env,
        args=["-m", "semcode", "mcp", "-w", str(ws), "--index-dir", str(work / "index"),
              *OFF])
    rng = random.Random(args.seed)
    rounds = agree = errors = 0
    shown: list[str] = []
    try:
        with open(work / "mcp.stderr", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (r, w), \
                    ClientSession(r, w) as session:
                await session.initialize()
                started = time.monotonic()
                while time.monotonic() - started < args.seconds:
                    rounds += 1
                    a, b = rng.sample(WORDS, 2)
                    name = f"handle_{a}_{b}_{rounds}"
                    path = ws / args.workspace.name / f"gen_{rng.randrange(5)}.py"
                    existed = path.exists()
                    path.write_text(f"def {name}(x):\n    '''{a} {b} processing'''\n"
                                    "    return x\n")
                    lsp.notify("workspace/didChangeWatchedFiles", {"changes": [
                        {"uri": path.as_uri(), "type": 2 if existed else 1}]})
                    query = f"{a} {b} processing handle {rounds}"

                    async def ask_mcp(query: str = query) -> list[Hit]:
                        nonlocal errors
                        res = await session.call_tool(
                            "search", {"query": query, "limit": args.limit,
                                       "mode": "lexical"})
                        if res.is_error:
                            errors += 1
                            return []
                        return mcp_hits(res)

                    async def ask_lsp(query: str = query) -> list[Hit]:
                        return lsp_hits(lsp, query, args.limit)

                    await until_found(ask_mcp, name)
                    await until_found(ask_lsp, name)
                    # Each server finishes what the edit set off in the background (the
                    # language server's watched-file event, a BM25 rebuild and its save)
                    # in its own time: compare answers taken while neither moved (the
                    # MCP answer the same before and after the language server's).
                    for _ in range(args.tries):
                        before, lsp_top, m = await ask_mcp(), await ask_lsp(), await ask_mcp()
                        if before == m:
                            break
                        await anyio.sleep(0.05)
                    if m == lsp_top:
                        agree += 1
                    elif len(shown) < 3:
                        shown.append(f"round {rounds}:\n  MCP {m}\n  LSP {lsp_top}")
    finally:
        lsp.close()
    logs = {n: (work / n).read_text() for n in ("lsp.stderr", "mcp.stderr")}
    trouble = {n: ("lock" in t.lower() and "error" in t.lower(), "Traceback" in t)
               for n, t in logs.items()}
    print(*shown, sep="\n")
    print(f"{args.seconds:.0f} s, {rounds} rounds: {agree} agree, {rounds - agree} disagree, "
          f"{errors} tool errors; lock errors / tracebacks in logs: {trouble}")
    bad = rounds - agree or errors or any(x for pair in trouble.values() for x in pair)
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tries", type=int, default=20,
                        help="answer triples to wait for a quiet moment (default 20)")
    parser.add_argument("--workspace", type=Path, default=default_workspace(),
                        help="a folder to copy and edit (default: the stdlib's email)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="semcode-agree-") as tmp:
        return anyio.run(run, args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
