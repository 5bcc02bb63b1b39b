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
from semcode.search.engine import Engine
from semcode.states import ModelFileState

if TYPE_CHECKING:
    from semcode.evaluation.runner import ProtocolRun

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def run_models(args: argparse.Namespace, root: Path, settings: Settings) -> int:
    """`semcode models`: each role's setting, the model and backend it resolves to on this
    machine, whether it is cached (`--download` fetches it) and, for the embedder, what
    embedding this folder would cost; text or `--json`. Returns the exit status."""
    from semcode.models.auto import backend_for, model_for
    from semcode.models.builtin import builtin_quality, is_builtin
    from semcode.models.costs import embedding_cost
    from semcode.models.registry import (
        ModelError,
        ModelSpec,
        cached_model_file,
        resolve_model_file,
        resolve_model_folder,
    )

    rows = []
    failed = False
    for role in ("embedder", "reranker"):
        raw = settings.embedding_model if role == "embedder" else settings.reranker_model
        spec_text, choice = model_for(settings, role)
        backend, why = backend_for(settings, role)
        row: dict[str, object] = {"role": role, "setting": raw, "spec": spec_text,
                               "backend": backend, "why_backend": why}
        if choice:
            row["choice"] = choice
        path = None
        try:
            spec = ModelSpec.parse(spec_text) if backend in ("llama.cpp", "model2vec") else None
            if model_is_off(spec_text):
                row.update(state=ModelFileState.OFF, path=None)
            elif spec is not None and is_builtin(spec_text):
                path = spec.local_path
                row.update(state=ModelFileState.BUILTIN, path=str(path))
                if quality := builtin_quality():
                    row["quality"] = quality
            elif spec is None:
                remote = settings.remote_url if backend == "remote" else ""
                row.update(state=ModelFileState.CONFIGURED, path=remote or spec_text)
            else:
                path = cached_model_file(spec)
                if path is None and args.download:
                    path = (resolve_model_folder(spec, settings.offline_mode, download=True)
                            if backend == "model2vec" else
                            resolve_model_file(spec, settings.offline_mode, download=True))
                row.update(state=ModelFileState.CACHED if path else ModelFileState.MISSING,
                           path=str(path) if path else None)
        except ModelError as exc:
            row.update(state=ModelFileState.ERROR, path=None, message=str(exc))
            failed = True
        if role == "embedder" and row["state"] in (ModelFileState.CACHED, ModelFileState.MISSING,
                                                   ModelFileState.BUILTIN):
            chunks = indexed_chunks(root, settings)
            cost = embedding_cost(settings, spec_text, backend, path, chunks)
            if cost:
                row["cost"] = cost
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['role']:>9}: {row['state']:<8} {row['spec']}")
            for key in ("choice", "path", "quality", "message", "cost"):
                if row.get(key):
                    print(f"{'':>11}{row[key]}")
            print(f"{'':>11}backend: {row['backend']} ({row['why_backend']})")
        if any(r["state"] == ModelFileState.MISSING for r in rows):
            print("run `semcode models --download` to fetch missing models")
    return EXIT_ERROR if failed else EXIT_OK



def indexed_chunks(root: Path, settings: Settings) -> int | None:
    """How many chunks this folder's index holds (None without an index; creates nothing)."""
    if not (index_dir_for(root, settings) / "index.sqlite").exists():
        return None
    try:
        engine = Engine.open(root, settings)
    except Exception:  # noqa: BLE001 - only an estimate depends on it
        return None
    try:
        return int(engine.status().get("chunks", 0))  # type: ignore[call-overload]
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
