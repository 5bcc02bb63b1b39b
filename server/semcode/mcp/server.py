"""`semcode mcp`: the Model Context Protocol server (official `mcp` SDK) over stdio, or
streamable HTTP on 127.0.0.1. A thin adapter: the tools call `McpService`, which calls
the `Engine`; every failure reaches the agent as a one-line tool error."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

import semcode
from semcode.config import Settings
from semcode.kinds import ContentKind, SearchMode
from semcode.mcp.service import (
    DEFAULT_MAX_TOKENS,
    MAX_MAX_TOKENS,
    MIN_MAX_TOKENS,
    McpService,
    ToolFailure,
)
from semcode.messages import first_line
from semcode.search.engine import MAX_QUERY_CHARS

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "semcode searches this workspace's code by meaning, locally (BM25 + embeddings, then a "
    "reranker). Use `search` with a plain-English description of what the code does "
    "(\"where are expired tokens refreshed\") or an identifier; it answers with the best "
    "functions and classes and their code. Use `symbol` when you know the exact name, "
    "`related` to find code similar to a function you are looking at, `status` when "
    "results look incomplete. The index follows the files on disk by itself."
)

# The tool schemas list the values of the closed sets (semcode/kinds.py) as JSON enums:
# pydantic writes a Literal of strings as `{"enum": [...], "type": "string"}` inline.
if TYPE_CHECKING:
    ContentName = str
    ModeName = str
else:
    ContentName = Literal[tuple(k.value for k in ContentKind)]
    ModeName = Literal[tuple(m.value for m in SearchMode)]

MaxTokens = Annotated[int, Field(
    ge=MIN_MAX_TOKENS, le=MAX_MAX_TOKENS,
    description="Budget for the whole answer, in tokens (~4 characters each). Code bodies "
                "are trimmed to fit (best hits keep the most); raise it to see more code.")]

T = TypeVar("T")


class SemcodeMCP(MCPServer[Any]):
    """MCPServer whose argument-validation errors are one line, like every other error."""

    # The SDK's own signature: `arguments` is the tool call's JSON object, validated by the
    # tool's pydantic model (Any as in the SDK); Context's parameters are the lifespan and
    # request types, which semcode does not use.
    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None
                        ) -> CallToolResult | InputRequiredResult:
        """MCPServer's call, with a bad-arguments error turned into one line naming the fields."""
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(f"Error executing tool {name}: bad arguments: "
                                f"{_validation_line(cause)}") from None
            raise


def _validation_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def build_server(service: McpService) -> SemcodeMCP:
    """The MCP server with semcode's tools (search, related, symbol, status) bound to `service`."""
    server = SemcodeMCP(name="semcode", version=semcode.__version__,
                        instructions=INSTRUCTIONS, log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    def call(fn: Callable[[], dict[str, object]]) -> CallToolResult:
        """Run one tool body: its answer as JSON text (or its own `text`, the rendered
        hits) plus the structured answer; any failure a one-line ToolError."""
        try:
            answer = fn()
        except ToolFailure as exc:
            raise ToolError(str(exc)) from None
        except Exception as exc:  # never a traceback to the agent; the log keeps it
            log.warning("tool failed: %s", "".join(traceback.format_exception(exc)).strip())
            raise ToolError(f"{type(exc).__name__}: {first_line(exc)}") from None
        text = answer.pop("text", None)
        if not isinstance(text, str):  # absent: the answer is its own text
            import json

            text = json.dumps(answer, indent=1)
        return CallToolResult(content=[TextContent(type="text", text=text)],
                              structured_content=answer)

    @server.tool(annotations=read_only, structured_output=False)
    def search(
        query: Annotated[str, Field(
            min_length=1, max_length=MAX_QUERY_CHARS,
            description="What the code does, in plain words (\"retry HTTP requests with "
                        "backoff\"), or an identifier.")],
        limit: Annotated[int, Field(ge=1, le=50, description="Most hits to return.")] = 8,
        mode: Annotated[ModeName, Field(
            description="hybrid (default): words and meaning; lexical: words only; "
                        "dense: meaning only.")] = SearchMode.HYBRID.value,
        languages: Annotated[list[str], Field(
            description="Only these languages (tree-sitter names: python, typescript, "
                        "go, rust, ...).")] = [],  # noqa: B006 (pydantic copies defaults)
        paths: Annotated[list[str], Field(
            description="Only paths matching these gitignore-style globs, relative to the "
                        "workspace (\"src/**\", \"*.py\").")] = [],  # noqa: B006
        contents: Annotated[list[ContentName], Field(
            description="Only these kinds of content (empty: all). 'code' leaves out "
                        "tests, examples, docs and generated files.")] = [],  # noqa: B006
        max_tokens: MaxTokens = DEFAULT_MAX_TOKENS,
    ) -> CallToolResult:
        """Find code in this workspace by meaning. Returns ranked hits, best first: path,
        line range, symbol, kind, score and the code itself, trimmed to `max_tokens`. A
        trimmed body ends with the line range still to read."""
        return call(lambda: service.search(query, limit, mode, languages, paths,
                                           [str(c) for c in contents], max_tokens))

    @server.tool(annotations=read_only, structured_output=False)
    def related(
        path: Annotated[str, Field(
            min_length=1, description="File path, relative to the workspace or absolute.")],
        line: Annotated[int, Field(ge=1, description="1-based line inside the function or "
                                                     "class to start from.")],
        limit: Annotated[int, Field(ge=1, le=50, description="Most hits to return.")] = 8,
        max_tokens: MaxTokens = DEFAULT_MAX_TOKENS,
    ) -> CallToolResult:
        """Code similar to the function or class at path:line (by its embedding): other
        implementations of the same idea, near-duplicates, callers' siblings. Needs
        semantic search (see `status`)."""
        return call(lambda: service.related(path, line, limit, max_tokens))

    @server.tool(annotations=read_only, structured_output=False)
    def symbol(
        name: Annotated[str, Field(
            min_length=1, max_length=500,
            description="A function, class or method name; qualify it to narrow "
                        "(\"TokenStore.refresh\").")],
        limit: Annotated[int, Field(ge=1, le=50, description="Most definitions to "
                                                             "return.")] = 10,
        max_tokens: MaxTokens = DEFAULT_MAX_TOKENS,
    ) -> CallToolResult:
        """Exact definition lookup by name: where a function, class or method with this
        name is defined, with its code. Case-sensitive matches first."""
        return call(lambda: service.symbol(name, limit, max_tokens))

    @server.tool(annotations=read_only, structured_output=False)
    def status() -> CallToolResult:
        """Index coverage (files, chunks, embedded), models, and what is degraded and why
        (e.g. semantic search off or still embedding)."""
        return call(service.status)

    return server


def run(root: Path, settings: Settings, http_port: int | None = None) -> int:
    """Serve until the client closes stdin (or Ctrl-C for HTTP)."""
    service = McpService(root, settings)
    server = build_server(service)
    service.start()
    try:
        if http_port is None:
            server.run("stdio")
        else:
            print(f"semcode: MCP on http://127.0.0.1:{http_port}/mcp for {root}",
                  file=sys.stderr)
            server.run("streamable-http", host="127.0.0.1", port=http_port)
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
    return 0
