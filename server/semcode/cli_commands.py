"""The bodies of the CLI's `models` and `eval` subcommands, and the exit codes (argparse,
the workspace root and the settings stay in `cli.py`). Each body imports the model
backends or the evaluation code when it runs, so `semcode search` loads neither.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from semcode.config import Settings, model_is_off
from semcode.index.indexer import index_dir_for
from semcode.kinds import Role
from semcode.search.engine import Engine
from semcode.states import ModelFileState

if TYPE_CHECKING:
    from semcode.evaluation.runner import ProtocolRun

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def run_models(args: argparse.Namespace, root: Path, settings: Settings) -> int:
    """`semcode models`: each role's setting, the model and backend it resolves to on this
    machine, whether it is cached (`--download` fetches it) and, for the embedder, what
    embedding this folder would cost; text or `--json`. Returns the exit status."""
    rows = [_model_row(role, args.download, root, settings)
            for role in (Role.EMBEDDER, Role.RERANKER)]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_model_rows(rows)
    failed = any(r["state"] == ModelFileState.ERROR for r in rows)
    return EXIT_ERROR if failed else EXIT_OK


def _model_row(role: Role, download: bool, root: Path, settings: Settings) -> dict[str, object]:
    """One row of `semcode models`: where `role`'s model stands on this machine."""
    from semcode.models.auto import backend_for, model_for
    from semcode.models.base import ModelError
    from semcode.models.costs import embedding_cost

    raw = settings.embedding_model if role == Role.EMBEDDER else settings.reranker_model
    spec_text, choice = model_for(settings, role)
    backend, why = backend_for(settings, role)
    row: dict[str, object] = {"role": role, "setting": raw, "spec": spec_text,
                              "backend": backend, "why_backend": why}
    if choice:
        row["choice"] = choice
    path = None
    try:
        path = _model_file_state(row, role, spec_text, backend, download, settings)
    except ModelError as exc:
        row.update(state=ModelFileState.ERROR, path=None, message=str(exc))
    if role == Role.EMBEDDER and row["state"] in (ModelFileState.CACHED, ModelFileState.MISSING,
                                               ModelFileState.BUILTIN):
        chunks = indexed_chunks(root, settings)
        cost = embedding_cost(settings, spec_text, backend, path, chunks)
        if cost:
            row["cost"] = cost
    return row


def _model_file_state(row: dict[str, object], role: Role, spec_text: str, backend: str,
                      download: bool, settings: Settings) -> Path | None:
    """Set the row's `state` and `path` (downloading when asked); the local file or folder,
    if any. Raises ModelError for a spec that cannot be resolved."""
    from semcode.models.base import ModelMissing
    from semcode.models.builtin import builtin_quality, builtin_reranker_quality, is_builtin
    from semcode.models.hub import (
        ModelSpec,
        cached_model_file,
        resolve_model_file,
        resolve_model_folder,
    )

    try:
        spec = (ModelSpec.parse(spec_text, role) if backend in ("llama.cpp", "model2vec")
                else None)
    except ModelMissing as exc:  # a built-in model this installation does not ship
        row.update(state=ModelFileState.MISSING, path=None, message=str(exc))
        return None
    path = None
    if model_is_off(spec_text):
        row.update(state=ModelFileState.OFF, path=None)
    elif spec is not None and is_builtin(spec_text):
        path = spec.local_path
        row.update(state=ModelFileState.BUILTIN, path=str(path))
        quality = builtin_quality() if role == Role.EMBEDDER else builtin_reranker_quality()
        if quality:
            row["quality"] = quality
    elif spec is None:
        remote = settings.remote_url if backend == "remote" else ""
        row.update(state=ModelFileState.CONFIGURED, path=remote or spec_text)
    else:
        path = cached_model_file(spec)
        if path is None and download:
            path = (resolve_model_folder(spec, settings.offline_mode, download=True)
                    if backend == "model2vec" else
                    resolve_model_file(spec, settings.offline_mode, download=True))
        row.update(state=ModelFileState.CACHED if path else ModelFileState.MISSING,
                   path=str(path) if path else None)
    return path


def _print_model_rows(rows: list[dict[str, object]]) -> None:
    for row in rows:
        print(f"{row['role']:>9}: {row['state']:<8} {row['spec']}")
        for key in ("choice", "path", "quality", "message", "cost"):
            if row.get(key):
                print(f"{'':>11}{row[key]}")
        print(f"{'':>11}backend: {row['backend']} ({row['why_backend']})")
    # A built-in model this installation lacks cannot be downloaded: its row says why.
    if any(r["state"] == ModelFileState.MISSING and not _names_builtin(r) for r in rows):
        print("run `semcode models --download` to fetch missing models")


def _names_builtin(row: dict[str, object]) -> bool:
    from semcode.models.builtin import is_builtin

    return is_builtin(str(row["spec"]))


def indexed_chunks(root: Path, settings: Settings) -> int | None:
    """How many chunks this folder's index holds (None without an index; creates nothing)."""
    if not (index_dir_for(root, settings) / "index.sqlite").exists():
        return None
    try:
        engine = Engine.open(root, settings)
    except Exception:  # noqa: BLE001 - only an estimate depends on it
        return None
    try:
        return engine.status().chunks
    finally:
        engine.indexer.close()


def run_eval(args: argparse.Namespace, root: Path, settings: Settings) -> int:
    """`semcode eval`: the docstring and commit protocols on the workspace (a stripped
    copy indexed apart from the user's real index); returns the process exit status."""
    from semcode.evaluation import (
        markdown_table,
        read_tree,
        result_json,
        run_commit,
        run_docstring,
    )

    rerank = settings.rerank and not getattr(args, "no_rerank", False)
    protocols = ("docstring", "commit") if args.protocol == "both" else (args.protocol,)

    def log(line: str) -> None:
        """One progress line on stderr, prefixed `semcode eval:`."""
        print(f"semcode eval: {line}", file=sys.stderr)

    runs: list[ProtocolRun] = []
    with tempfile.TemporaryDirectory(prefix="semcode-eval-") as tmp:
        work = Path(tmp)
        if getattr(args, "index_dir", None) is None:  # apart from the user's real index
            settings = Settings.from_mapping({"index_dir": str(work / "index")}, settings)
        if "docstring" in protocols:
            files = read_tree(root, settings)
            runs.append(run_docstring(files, settings, work, args.max_queries, args.seed,
                                      rerank, log))
        if "commit" in protocols:
            if (root / ".git").exists():
                runs.append(run_commit(root, settings, work, args.max_queries, args.seed,
                                       rerank, log))
            elif args.protocol == "commit":
                log(f"{root} is not a git repository")
                return EXIT_USAGE
    if args.json:
        print(json.dumps([result_json(r) for r in runs], indent=2))
    else:
        for r in runs:
            print(markdown_table(r["protocol"], r["summary"]))
            for line in r["notices"]:
                log(line)
    return EXIT_OK


def print_estimate(root: Path, settings: Settings) -> int:
    """`semcode index --dry-run`: what would be indexed and what it will cost, measured on a
    sample of the folder's own files (search/estimate.py); the index is not touched."""
    from semcode.models.costs import duration_text
    from semcode.search.estimate import estimate_index

    def say(line: str) -> None:
        print(f"semcode: {line}", file=sys.stderr, flush=True)

    est = estimate_index(root, settings, progress=say)
    out = sys.stdout
    print(f"{root}: would index {est.files:,} files ({_mb(est.bytes)}), "
          f"about {est.chunks:,} chunks (dry run: nothing written)", file=out)
    for lang in est.languages:
        print(f"  {lang.language:<14} {lang.files:>8,} files {_mb(lang.bytes):>10}  "
              f"~{lang.chunks:,} chunks", file=out)
    if est.skipped:
        parts = ", ".join(f"{n:,} {reason.value}" for reason, n in
                          sorted(est.skipped.items(), key=lambda kv: -kv[1]))
        print(f"skipped: {parts}", file=out)
    if est.ignore_cause is not None:
        rule = est.ignore_cause.rule
        print(f"ignored most: {rule.source} line {rule.line} ({rule.pattern!r}) excludes "
              f"{est.ignore_cause.excluded:,} entries (e.g. {est.ignore_cause.example})",
              file=out)
    embed = (f" + ~{duration_text(est.embed_seconds)} embedding ({est.embedding_model})"
             if est.embed_seconds is not None else " (no embedding model)")
    print(f"estimated cold index: ~{duration_text(est.index_seconds)}{embed}, "
          f"~{_mb(est.disk_bytes)} on disk", file=out)
    print(f"measured on this machine by indexing a sample of {est.sample_files:,} files "
          f"({est.sample_chunks:,} chunks); very large folders cost a little more per chunk",
          file=out)
    return EXIT_OK


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.0f} KB"

