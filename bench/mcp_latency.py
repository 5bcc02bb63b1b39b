"""How soon does an agent's MCP server answer on an existing index, how fast are its
searches, and how much memory does it hold (issue 19: "MCP the same" as the language
server: ready in <= 3 s, `search` p50 <= 50 ms and p95 <= 150 ms, RSS <= 1 GB)?

Spawns `semcode mcp` over stdio, driven by the official MCP SDK's client as an agent
would, on a workspace whose index already exists, and records: the seconds from spawn
to the first `search` answered with hits, then `--rounds` rounds of `search` over a few
questions (lexical: the first stage a CPU runs by default with no model), and the
server's resident memory (Linux /proc) when it first answered and at the end.

    python bench/mcp_latency.py --workspace TREE --index-dir DIR [--rounds 5]

Prints medians and p95s and one JSON object. Nothing asserts a time (the machine may be
shared: the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from lsp_freshness import server_memory  # noqa: E402

QUESTIONS = ("allocate memory for a new network buffer", "parse the command line options",
             "retry the request after a timeout", "free the page when the count drops",
             "lock the list before walking it")
OFF = ("--set", "embedding_model=off", "--set", "reranker_model=off")


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def server_pid() -> int | None:
    """The `semcode mcp` process this run spawned: a child of this process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"semcode" in cmdline and b"mcp" in cmdline:
            return int(entry.name)
    return None


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "server"), "HF_HUB_OFFLINE": "1"}
    params = StdioServerParameters(
        command=sys.executable, env=env,
        args=["-m", "semcode", "mcp", "-w", str(args.workspace), "--index-dir",
              str(args.index_dir), *OFF])
    result: dict[str, Any] = {"workspace": str(args.workspace),
                              "load_before": os.getloadavg()}
    with tempfile.TemporaryFile("w+") as errlog:
        t0 = time.perf_counter()
        async with stdio_client(params, errlog=errlog) as (r, w), \
                ClientSession(r, w) as session:
            await session.initialize()
            while True:
                res = await session.call_tool("search", {"query": QUESTIONS[0], "limit": 8,
                                                         "mode": "lexical"})
                if not res.is_error and "1." in str(res.content):
                    break
                if time.perf_counter() - t0 > 600:
                    sys.exit(f"no answer in 600 s: {res.content}")
                await anyio.sleep(0.05)
            result["first_answer_s"] = time.perf_counter() - t0
            pid = server_pid()
            result["memory_first_answer"] = server_memory(pid) if pid else {}
            times = []
            for _ in range(args.rounds):
                for question in QUESTIONS:
                    q0 = time.perf_counter()
                    res = await session.call_tool("search", {"query": question, "limit": 8,
                                                             "mode": "lexical"})
                    times.append((time.perf_counter() - q0) * 1000)
                    if res.is_error:
                        sys.exit(f"search failed: {res.content}")
            result["memory_end"] = server_memory(pid) if pid else {}
    result["search_ms"] = {"n": len(times), "median": round(statistics.median(times), 1),
                           "p95": round(percentile(times, 0.95), 1),
                           "max": round(max(times), 1)}
    result["load_after"] = os.getloadavg()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--index-dir", type=Path, required=True,
                    help="the index base directory the workspace's index is under")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.workspace = args.workspace.resolve()
    result = anyio.run(measure, args)
    s = result["search_ms"]
    print(f"first answer after {result['first_answer_s']:.2f} s; search ms: median "
          f"{s['median']}, p95 {s['p95']}, max {s['max']} (n={s['n']}); memory at the first "
          f"answer {result['memory_first_answer']}, at the end {result['memory_end']}; load "
          f"{result['load_before']} -> {result['load_after']}")
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
