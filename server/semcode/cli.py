"""The `semcode` command line: a thin adapter over the engine.

    semcode index [PATH]          build or update the index (progress bars, ETA)
    semcode search QUERY          update incrementally, then search (human or --json)
    semcode status                what the index holds
    semcode models                configured models: cached, missing, download
    semcode serve                 the language server on stdio
    semcode mcp                   the MCP server for coding agents (stdio or --http)
    semcode eval                  measure search quality on your own code

`--json` output is a published interface (scripts rely on it): change it deliberately,
documented in README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semcode import __version__
from semcode.cli_commands import EXIT_ERROR, EXIT_OK, EXIT_USAGE, run_eval, run_models
from semcode.config import ConfigError, Settings, load_settings
from semcode.index.indexer import Indexer, Progress, SyncReport, index_dir_for
from semcode.index.store import StoreCorrupt, StoreError
from semcode.search.engine import (
    Engine,
    SearchError,
    SearchRequest,
    SearchResponse,
    StageScore,
)
from semcode.workspace import IgnoreCause


# ====================================================================== argument parsing
def add_model_options(p: argparse.ArgumentParser) -> None:
    """Add the options every subcommand shares (models, offline, index directory, config file,
    `--set KEY=VALUE`) to `p`, as one help group."""
    g = p.add_argument_group("models and storage")
    g.add_argument("--embedding-model", metavar="SPEC",
                   help="hf:OWNER/REPO/FILE.gguf, a local GGUF path, or 'off'")
    g.add_argument("--reranker-model", metavar="SPEC",
                   help="hf:OWNER/REPO/FILE.gguf, a local GGUF path, or 'off'")
    g.add_argument("--embedding-profile", metavar="NAME",
                   help="the embedder's recipe (default: detected from the GGUF)")
    g.add_argument("--offline", action="store_true", default=None,
                   help="never download models (also: HF_HUB_OFFLINE=1)")
    g.add_argument("--index-dir", metavar="DIR", help="where indexes live (default: user cache)")
    g.add_argument("--config", metavar="FILE", type=Path, help="a config.toml to read")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="any setting (see README: Configuration); repeatable")


def build_parser() -> argparse.ArgumentParser:
    """The `semcode` argument parser with every subcommand. `serve` takes its arguments as they come
    (`main` hands them to the language server's own parser)."""
    parser = argparse.ArgumentParser(
        prog="semcode", description="Find code by meaning, locally.")
    parser.add_argument("--version", action="version", version=f"semcode {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="build or update the index of a folder")
    p.add_argument("path", nargs="?", default=".", type=Path)
    p.add_argument("--no-embed", action="store_true", help="chunk and BM25 only")
    p.add_argument("--full", action="store_true",
                   help="drop and rebuild the index (cached embeddings are reused)")
    add_model_options(p)

    p = sub.add_parser("search", help="search a folder by meaning")
    p.add_argument("query", nargs="?", help="what you are looking for")
    p.add_argument("-w", "--workspace", type=Path, default=Path("."))
    p.add_argument("-k", "--limit", type=int, default=10, metavar="N")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--mode", choices=("hybrid", "lexical", "dense"), default="hybrid")
    p.add_argument("--no-rerank", action="store_true")
    p.add_argument("--lang", action="append", default=[], metavar="L",
                   help="only this language (repeatable)")
    p.add_argument("--path", action="append", default=[], metavar="GLOB",
                   help="only paths matching this gitignore-style glob (repeatable)")
    p.add_argument("--content", action="append", default=[], metavar="KIND",
                   help="only this content kind (repeatable, or a comma list): "
                        "code, test, example, docs, config, generated, declaration, reexport")
    p.add_argument("--queries", type=Path, metavar="FILE",
                   help="answer every line of FILE (with --json: one JSON object per line)")
    p.add_argument("--no-update", action="store_true",
                   help="search the index as it is, without checking the disk first")
    p.add_argument("--embed-budget", type=float, default=20.0, metavar="SECONDS",
                   help="at most this long embedding new chunks before searching "
                        "(default 20; `semcode index` embeds everything)")
    add_model_options(p)

    p = sub.add_parser("status", help="what the index of a folder holds")
    p.add_argument("-w", "--workspace", type=Path, default=Path("."))
    p.add_argument("--json", action="store_true")
    add_model_options(p)

    p = sub.add_parser("models", help="configured models: cached, missing; download them")
    p.add_argument("--download", action="store_true", help="download missing models now")
    p.add_argument("--json", action="store_true")
    p.add_argument("-w", "--workspace", type=Path, default=Path("."))
    add_model_options(p)

    p = sub.add_parser(
        "eval", help="measure search quality on your own code",
        description="Strip docstrings from a copy of your code and search for each function "
                    "by its docstring's first sentence (and, in a git repository, for the "
                    "files each commit changed by its message); print MRR/nDCG/Recall per "
                    "stage, with 95% bootstrap intervals.")
    p.add_argument("-w", "--workspace", type=Path, default=Path("."))
    p.add_argument("--max-queries", type=int, default=200, metavar="N",
                   help="at most N queries per protocol (default 200)")
    p.add_argument("--protocol", choices=("docstring", "commit", "both"), default="both")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-rerank", action="store_true", help="first stage only")
    p.add_argument("--seed", type=int, default=0, help="query sampling and bootstrap seed")
    add_model_options(p)

    p = sub.add_parser("mcp", help="serve a folder to coding agents over MCP (stdio)")
    p.add_argument("-w", "--workspace", type=Path,
                   help="the folder to search (default: the current directory)")
    p.add_argument("--http", type=int, metavar="PORT",
                   help="streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio")
    p.add_argument("--print-config", choices=("claude", "codex", "cursor", "vscode"),
                   metavar="CLIENT",
                   help="print the setup snippet for claude, codex, cursor or vscode and exit")
    add_model_options(p)

    p = sub.add_parser("serve", help="run the language server on stdio", add_help=False)
    p.add_argument("serve_args", nargs=argparse.REMAINDER)
    return parser


def settings_from_args(args: argparse.Namespace, workspace: Path | None) -> Settings:
    """The settings for `workspace`: defaults < the user config (or `--config`) < the
    workspace's `.semcode.toml` < the command-line flags and `--set` pairs (strings,
    validated by `Settings.from_mapping` like any other source). Raises `ConfigError`
    naming a bad key or value."""
    overrides: dict[str, object] = {}
    for key in ("embedding_model", "reranker_model", "embedding_profile", "offline", "index_dir"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    for item in getattr(args, "set", []) or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    if getattr(args, "no_rerank", False):
        overrides["rerank"] = False
    return load_settings(workspace, overrides, getattr(args, "config", None))


# ====================================================================== progress output
class ProgressPrinter:
    """tqdm bars on stderr (hidden when stderr is not a terminal), one per stage."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bars: dict[str, Any] = {}

    def __call__(self, p: Progress) -> None:
        if not self.enabled or p.total <= 0:
            return
        from tqdm import tqdm

        bar = self._bars.get(p.stage)
        if bar is None:
            unit = "chunk" if p.stage == "embed" else "file"
            label = {"embed": "embedding", "chunk": "chunking"}.get(p.stage, p.stage)
            bar = self._bars[p.stage] = tqdm(total=p.total, desc=label, unit=unit,
                                             file=sys.stderr, dynamic_ncols=True)
        bar.total = p.total
        bar.n = p.done
        bar.refresh()

    def close(self) -> None:
        """Close every bar (so later stderr lines do not land inside one); the next progress report
        starts new bars."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def _notice(line: str) -> None:
    print(f"semcode: {line}", file=sys.stderr)


def open_engine(root: Path, settings: Settings, args: argparse.Namespace,
                check: bool = False, fresh: bool = False) -> Engine:
    """The engine over `root`'s index. `check` verifies the database first and `fresh`
    drops its chunks before anything is read (`index --full`); after a command found it
    damaged (`main` retries once), it is moved aside and rebuilt. Waiting for another
    process's write lock is said in one line."""
    from semcode.models.registry import ModelSet

    indexer = Indexer(root, settings, check=check, recover=getattr(args, "recover", False),
                      fresh=fresh, notice=_notice)
    return Engine(indexer, ModelSet(settings))


def close_engine(engine: Engine, failing: bool) -> None:
    """Save and close; when the command already failed, a second error (the disk is
    still full) must not hide the first one."""
    try:
        engine.close()
    except (StoreError, OSError):
        if not failing:
            raise
        engine.indexer.close()
    finally:
        engine.models.close()


# ====================================================================== commands
def cmd_index(args: argparse.Namespace) -> int:
    """`semcode index`: sync the folder's index with the disk (`--full` first checks and drops it),
    then embed every pending chunk; progress on stderr. Ctrl-C keeps what was indexed (exit 130)."""
    root = workspace_root(args.path)
    settings = settings_from_args(args, root)
    if args.no_embed:
        settings = Settings.from_mapping({"embedding_model": "off"}, settings)
    engine = open_engine(root, settings, args, check=args.full, fresh=args.full)
    printer = ProgressPrinter(sys.stderr.isatty())
    failing = True
    try:
        report = engine.sync(printer)
        printer.close()
        print(f"indexed {root}: {report.files_seen} files ({report.files_indexed} changed, "
              f"{report.files_removed} removed, {report.files_skipped} skipped), "
              f"{report.chunks} chunks in {report.seconds:.1f}s", file=sys.stderr)
        if report.ignore_cause is not None:
            _notice(_ignore_line(report.ignore_cause, report))
        for warning in report.warnings if args.verbose else []:
            _notice(f"warning: {warning}")
        if report.warnings and not args.verbose:
            _notice(f"{len(report.warnings)} files had parse warnings (-v lists them)")
        embed = engine.embed_pending(printer)
        printer.close()
        for line in engine.models.notices():
            _notice(line)
        if embed.error:
            _notice(f"embedding stopped, {embed.pending} chunks still pending: {embed.error}")
        if embed.model:
            print(f"embedded {embed.embedded} chunks in {embed.seconds:.1f}s "
                  f"({embed.pending} pending)", file=sys.stderr)
        failing = False
    except KeyboardInterrupt:
        printer.close()
        failing = False
        _notice("interrupted: what was indexed so far is saved")
        return 130
    finally:
        printer.close()
        close_engine(engine, failing)
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    """`semcode search`: unless `--no-update`, sync and embed for at most `--embed-budget` seconds,
    then answer the query (or each line of `--queries`), reranked when a reranker is configured;
    text or the published `--json`. A bad query is a usage error (exit 2)."""
    if args.query is None and args.queries is None:
        print("semcode search: give a QUERY or --queries FILE", file=sys.stderr)
        return EXIT_USAGE
    root = workspace_root(args.workspace)
    settings = settings_from_args(args, root)
    queries = [args.query] if args.query is not None else _read_queries(args.queries)
    try:  # a bad option (limit, glob, content kind) is one line before anything is opened
        for query in queries[:1]:
            _request(args, query).validate()
    except SearchError as exc:
        print(f"semcode search: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.no_update and not _has_index(root, settings):  # and create none
        print(f"semcode: {root} is not indexed yet: run `semcode index {args.workspace}`",
              file=sys.stderr)
        return EXIT_ERROR
    engine = open_engine(root, settings, args)
    printer = ProgressPrinter(sys.stderr.isatty())
    failing = True
    try:
        owed = engine.indexer.rebuild_owed()
        if args.no_update and owed and not engine.indexer.notices:
            _notice(f"indexing first: {owed}")  # never an answer from half an index
        if not args.no_update or owed:
            engine.sync(printer)
            if args.mode != "lexical":
                engine.embed_pending(printer, budget_s=args.embed_budget)
            printer.close()
        shown: set[str] = set()
        for query in queries:
            req = _request(args, query)
            try:
                response = engine.search(req)
                response = engine.rerank(req, response)
            except SearchError as exc:
                print(f"semcode search: {exc}", file=sys.stderr)
                return EXIT_USAGE
            for line in response.notices:
                if line not in shown:
                    shown.add(line)
                    _notice(line)
            _print_response(query, response, args.json, many=len(queries) > 1 or args.queries)
        failing = False
    finally:
        printer.close()
        close_engine(engine, failing)
    return EXIT_OK


def _request(args: argparse.Namespace, query: str) -> SearchRequest:
    """The engine's request for one query of `semcode search`, from its options."""
    return SearchRequest(query=query, limit=args.limit, mode=args.mode,
                         languages=tuple(args.lang), paths=tuple(args.path),
                         contents=_content_kinds(args.content))


def _content_kinds(values: list[str]) -> tuple[str, ...]:
    """`--content test --content docs,example` -> ("test", "docs", "example")."""
    return tuple(dict.fromkeys(v.strip() for value in values for v in value.split(",")
                               if v.strip()))


def _stage_json(stage: StageScore) -> dict[str, Any]:
    out: dict[str, Any] = {"rank": stage.rank, "score": round(stage.score, 6)}
    if stage.factors is not None:
        out["factors"] = stage.factors
    return out


def result_json(response: SearchResponse) -> list[dict[str, Any]]:
    """The published `--json` shape: one object per result, best first."""
    out = []
    for hit in response.hits:
        c = hit.chunk
        out.append({
            "path": c.path,
            "start_line": c.start_line,
            "end_line": c.end_line,
            "name": c.name,
            "container": c.container,
            "kind": c.kind.name.lower(),
            "symbol_kind": int(c.kind),
            "language": c.language,
            "content": c.content,
            "score": round(hit.score, 6),
            "reranked": response.reranked,
            "stages": {k: _stage_json(v) for k, v in hit.stages.items()},
            "preview": c.preview(),
        })
    return out


def _print_response(query: str, response: SearchResponse, as_json: bool, many: bool) -> None:
    if as_json:
        results = result_json(response)
        if many:
            print(json.dumps({"query": query, "mode": response.mode,
                              "reranked": response.reranked, "results": results}))
        else:
            print(json.dumps(results, indent=2))
        return
    if many:
        print(f"# {query}")
    if not response.hits:
        print("no results")
    for n, hit in enumerate(response.hits, start=1):
        c = hit.chunk
        kind = c.kind.name.lower() if c.content == "code" else f"{c.kind.name.lower()}, {c.content}"
        print(f"{n:2}. {c.path}:{c.start_line} {c.qualified_name} ({kind})  {hit.score:.3f}")
        preview = c.preview()
        if preview:
            print(f"      {preview}")
    if many:
        print()


def cmd_status(args: argparse.Namespace) -> int:
    """`semcode status`: what the folder's index holds (files, chunks, models, ...); without an
    index it says so and exits 1 rather than creating one."""
    root = workspace_root(args.workspace)
    settings = settings_from_args(args, root)
    if not _has_index(root, settings):
        # Asking must not create an empty index as a side effect.
        if args.json:
            print(json.dumps({"root": str(root), "indexed": False}, indent=2))
        else:
            print(f"{root} has no index yet: run `semcode index {args.workspace}`")
        return EXIT_ERROR
    engine = open_engine(root, settings, args)
    try:
        owed = engine.indexer.rebuild_owed()
        status = {**engine.status(), "indexed": owed is None}
        if owed is not None:  # new, rebuilt after damage, or a --full cut short
            status["reason"] = owed
    finally:
        engine.indexer.close()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for key, value in status.items():
            print(f"{key:>18}: {value}")
        if owed is not None:
            print(f"run `semcode index {args.workspace}` to index it")
    return EXIT_OK if owed is None else EXIT_ERROR


def cmd_models(args: argparse.Namespace) -> int:
    """`semcode models`: configured models, cached or missing (see cli_commands)."""
    root = workspace_root(args.workspace)
    return run_models(args, root, settings_from_args(args, root))


def cmd_mcp(args: argparse.Namespace) -> int:
    """`semcode mcp`: print a client's config snippet (`--print-config`), or serve the folder to
    coding agents over MCP (stdio, or HTTP with `--http PORT`) until the client leaves."""
    if args.print_config:
        from semcode.mcp.configs import snippet

        ws = workspace_root(args.workspace) if args.workspace is not None else None
        print(snippet(args.print_config, ws), end="")
        return EXIT_OK
    if args.http is not None and not 0 < args.http < 65536:
        raise ConfigError(f"--http expects a port number, got {args.http}")
    root = workspace_root(args.workspace or Path("."))
    settings = settings_from_args(args, root)
    from semcode.mcp.server import run

    return run(root, settings, args.http)


def cmd_eval(args: argparse.Namespace) -> int:
    """`semcode eval`: search quality on the workspace's own code (see cli_commands)."""
    root = workspace_root(args.workspace)
    return run_eval(args, root, settings_from_args(args, root))


def cmd_serve(args: argparse.Namespace) -> int:
    """`semcode serve`: the language server on stdio; its arguments go to its own parser."""
    from semcode.lsp.server import serve

    return serve(list(args.serve_args))


# ====================================================================== helpers
def workspace_root(path: Path) -> Path:
    """`path` made absolute (user and symlinks resolved); a `ConfigError` when it is not a
    directory."""
    try:
        root = path.expanduser().resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before 3.13)
        why = "a symlink loop" if "loop" in str(exc).lower() else \
            getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot open the workspace {path}: {why}") from None
    if not root.is_dir():
        raise ConfigError(f"not a directory: {path}")
    return root


def _has_index(root: Path, settings: Settings) -> bool:
    """Whether `root` has an index database (checked without creating anything)."""
    return (index_dir_for(root, settings) / "index.sqlite").exists()


def _ignore_line(cause: IgnoreCause, report: SyncReport) -> str:
    """One line naming the rule-file line that left (almost) nothing to index."""
    rule = cause.rule
    return (f"{report.files_seen} files indexed: {rule.source} line {rule.line} "
            f"({rule.pattern!r}) excludes {cause.excluded} of the {report.files_skipped} "
            f"skipped entries (e.g. {cause.example})")


def _read_queries(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read --queries file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--queries file {path} is not UTF-8 text (byte {exc.start} "
                          "cannot be decoded)") from None
    return [line.strip() for line in lines if line.strip()]


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="semcode: %(levelname)s: %(message)s")
    # The hub client logs every retry; our own message says what matters in one line.
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


COMMANDS = {"index": cmd_index, "search": cmd_search, "status": cmd_status,
            "models": cmd_models, "eval": cmd_eval, "serve": cmd_serve,
            "mcp": cmd_mcp}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`) and return the exit status: 0 ok, 1
    error, 2 usage. Every expected failure (bad settings, a store or disk error) is one `semcode:
    ...` line on stderr, no traceback; a database found damaged in the middle of `index`,
    `search` or `status` is moved aside and the command runs once more."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # `serve` forwards everything (VS Code appends --stdio) to the server's own parser.
    if argv and argv[0] == "serve":
        args = argparse.Namespace(command="serve", serve_args=argv[1:], verbose=0)
    else:
        args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command != "serve":  # the language server logs to its file and to the client
        _configure_logging(args.verbose)
    try:
        try:
            return COMMANDS[args.command](args)
        except StoreCorrupt as exc:
            if args.command not in ("index", "search", "status"):
                raise
            # Found damaged mid-command: move the database aside (one line says so and
            # why, cached embeddings are kept) and run the command once more on a new one.
            args.recover = str(exc)
            return COMMANDS[args.command](args)
    except (ConfigError, StoreError) as exc:
        print(f"semcode: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_ERROR
    except OSError as exc:  # disk full, read-only, not a directory: one line, no traceback
        if isinstance(exc, BrokenPipeError):
            return EXIT_OK
        where = f": {exc.filename}" if exc.filename else ""
        print(f"semcode: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `semcode search … | head`
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
