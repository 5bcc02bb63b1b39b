"""Prepare the benchmark's corpora: for each pinned repository, the workspace to index
(doc comments and docstrings stripped from all code, the documentation sections used as
prose queries cut out) and its queries in three styles, with gold answers.

    python -m bench.quality.prepare [--corpus NAME ...]

Always run with this checkout's `server/` on the path (bench/run does so in a
subprocess), so that a run against another semcode (e.g. 0.1.0) sees the very same
workspaces and queries. Each corpus is written to
`<bench cache>/prepared/<checkout>/<name>/{tree/, queries.json}`; a stamp (the archive's sha256 and
a hash of the generating code) makes re-runs skip unchanged corpora, and a changed tree is
rewritten file by file so its index updates incrementally.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.quality.corpora import (  # noqa: E402
    is_doc_name,
    load_manifest,
    prepared_root,
    read_corpus,
)
from semcode.chunking.chunker import chunk_file  # noqa: E402
from semcode.evaluation.protocols import Query, docstring_corpus  # noqa: E402
from semcode.evaluation.styles import (  # noqa: E402
    HEADER_EXTS,
    cut_lines,
    definitions,
    header_doc_queries,
    identifier_queries,
    is_gold_path,
    prose_queries,
)

STYLES = ("docstring", "prose", "identifier")
# At most this many queries per repository and style (a seeded sample), so no repository
# dominates its language.
MAX_PER_REPO = {"docstring": 50, "prose": 60, "identifier": 30}
SEED = 0


def generator_hash() -> str:
    """A hash of every source file that decides what is prepared."""
    h = hashlib.sha256()
    server = REPO / "server" / "semcode"
    paths = [Path(__file__), Path(__file__).with_name("corpora.py"),
             *sorted((server / "evaluation").glob("*.py")),
             *sorted((server / "chunking").glob("*.py"))]
    for p in paths:
        h.update(p.read_bytes())
    h.update(json.dumps(MAX_PER_REPO, sort_keys=True).encode())
    return h.hexdigest()[:16]


def build(files: dict[str, str], corpus: str, seed: int = SEED,
          max_per_repo: dict[str, int] | None = None,
          ) -> tuple[dict[str, str], dict[str, list[Query]], dict[str, Any]]:
    """The indexed tree, the queries by style and statistics for one repository's files
    (relative path -> original text)."""
    caps = max_per_repo or MAX_PER_REPO
    code = {p: t for p, t in files.items() if not is_doc_name(p)}
    docs = {p: t for p, t in files.items() if is_doc_name(p)}
    stripped = docstring_corpus(code)
    chunks = [c for p, t in stripped.files.items() for c in chunk_file(p, t).chunks]
    defs = definitions(chunks)
    docstring = [q for q in stripped.queries
                 if all(is_gold_path(k.split("::", 1)[0]) for k in q.gold)]
    # C/C++: docs on declarations in headers -> the definitions (stripped as well)
    golds = {k for q in docstring for k in q.gold}
    summaries = {q.text.lower() for q in docstring}
    for path in sorted(stripped.files):
        if path.endswith(HEADER_EXTS):
            found, lines = header_doc_queries(path, stripped.files[path], defs)
            stripped.files[path] = cut_lines(stripped.files[path], lines)
            for q in found:
                if not (q.gold & golds) and q.text.lower() not in summaries:
                    golds |= q.gold
                    summaries.add(q.text.lower())
                    docstring.append(q)
    by_style: dict[str, list[Query]] = {
        "docstring": docstring,
        "identifier": identifier_queries(defs, f"{corpus}/{seed}"),
    }
    prose, cut = prose_queries(docs, defs)
    by_style["prose"] = prose
    tree = dict(stripped.files)
    for path, text in docs.items():
        tree[path] = cut_lines(text, cut.get(path, set()))
    stats: dict[str, Any] = {"files": len(tree), "code_files": len(code), "doc_files": len(docs),
                             "chunks": len(chunks), "docstring_protocol": stripped.stats,
                             "available": {s: len(qs) for s, qs in by_style.items()}}
    for style, qs in by_style.items():
        if len(qs) > caps[style]:
            keep = set(random.Random(f"{corpus}/{style}/{seed}").sample(range(len(qs)),
                                                                        caps[style]))
            by_style[style] = [q for i, q in enumerate(qs) if i in keep]
    return tree, by_style, stats


def sync_tree(files: dict[str, str], root: Path) -> None:
    """Make `root` hold exactly `files`, writing only what differs."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        target = root / rel
        data = text.encode("utf-8", "surrogatepass")
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    wanted = {root / rel for rel in files}
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def read_local(directory: Path) -> dict[str, str]:
    """A local tree's source and documentation files (the `--quick` corpora)."""
    from bench.quality.corpora import SOURCE_EXTS

    files: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if (path.is_file() and "__pycache__" not in rel
                and (rel.endswith(SOURCE_EXTS) or is_doc_name(rel))):
            files[rel] = path.read_text("utf-8", "replace")
    return files


def prepare(corpus: dict[str, Any], root: Path | None = None, force: bool = False,
            files: dict[str, str] | None = None, log: Any = print) -> Path:
    """Prepare one corpus (if its stamp is stale) under `root`; returns its directory.
    `files` replaces the manifest's archive (local corpora)."""
    out = (root or prepared_root()) / corpus["name"]
    if files is not None:
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        corpus = {**corpus, "sha256": digest}
    stamp = f"{corpus['sha256']}/{generator_hash()}"
    if not force and (out / "stamp").is_file() and (out / "stamp").read_text() == stamp:
        return out
    if files is None:
        files = read_corpus(corpus)
    tree, by_style, stats = build(files, corpus["name"])
    sync_tree(tree, out / "tree")
    queries = [{"id": q.id, "style": style, "text": q.text, "gold": sorted(q.gold),
                "hard": q.hard, "language": corpus["language"]}
               for style, qs in by_style.items() for q in qs]
    tmp = out / "queries.json.tmp"
    tmp.write_text(json.dumps(
        {"corpus": corpus["name"], "language": corpus["language"], "split": corpus["split"],
         "stats": stats, "queries": queries}, indent=1))
    tmp.replace(out / "queries.json")  # atomic: a concurrent reader sees old or new
    (out / "stamp").write_text(stamp)
    log(f"prepared {corpus['name']}: {stats['files']} files, "
        + ", ".join(f"{s} {len(qs)}/{stats['available'][s]}" for s, qs in by_style.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    """Prepare every corpus of the manifest (or the named ones)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", action="append", default=[])
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--local", action="append", default=[], metavar="NAME:LANG:SPLIT:DIR[,DIR]",
                    help="a local tree instead of the manifest (repeatable; no downloads)")
    ap.add_argument("--out", type=Path, default=None, help="prepared root (default: cache)")
    args = ap.parse_args(argv)
    if args.local:
        for spec in args.local:
            name, language, split, directories = spec.split(":", 3)
            corpus = {"name": name, "language": language, "split": split}
            files = {f"{Path(d).name}/{rel}": text for d in directories.split(",")
                     for rel, text in read_local(Path(d)).items()}
            prepare(corpus, args.out, args.force, files=files)
        return 0
    for corpus in load_manifest():
        if not args.corpus or corpus["name"] in args.corpus:
            prepare(corpus, args.out, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
