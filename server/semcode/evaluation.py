"""Search quality, measured: `semcode eval` on the user's own code, and the library that
`bench/` uses for the published numbers (one implementation of every metric and protocol).

Protocols (DESIGN §7):

* **docstring → function** (the CodeSearchNet protocol). Every docstring and leading doc
  comment is stripped from *all* the code, which is written to a temporary workspace and
  indexed with the real engine. Each function or method with a doc gives one query: the
  first sentence of its doc (at least 4 words, not "Deprecated…"/"See…"); the gold answer
  is that symbol (path + qualified name). Queries whose symbol is ambiguous (same key
  twice), whose body is duplicated elsewhere, or whose summary is not unique are dropped.
  Test files are indexed as distractors but never queried. The "hard" slice holds the
  queries that share no BM25 sub-token with the symbol's name or path.
* **commit → changed files**. The commit's subject and body are the query; the gold
  answers are the non-test source files it modified, searched in the tree of its parent.
  Merges, reverts and commits touching more than 20 files are skipped.

Metrics per stage (lexical, dense, fused, reranked): MRR@10, nDCG@10 and Recall@k, with
95% bootstrap intervals over queries; the reranker's effect is the paired per-query
difference (reranked − fused) with its own bootstrap interval.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semcode.chunking.chunker import ChunkerConfig, chunk_file
from semcode.chunking.languages import detect_language
from semcode.chunks import Chunk, SymbolKind
from semcode.config import Settings
from semcode.index.tokenizer import path_tokens, query_tokens, tokenize

__all__ = [
    "Query", "QueryResult", "DocstringCorpus", "CommitCase",
    "reciprocal_rank", "recall_at", "ndcg_at", "bootstrap_ci", "paired_bootstrap",
    "relevant_ranks", "first_sentence", "is_test_path", "docstring_corpus",
    "commit_cases", "evaluate", "summarize", "markdown_table", "run_docstring", "run_commit",
    "add_parser", "run",
]

RECALL_KS = (1, 5, 10, 50, 100)
STAGES = ("lexical", "dense", "fused", "reranked")
MIN_QUERY_WORDS = 4
MAX_COMMIT_FILES = 20
SEARCH_LIMIT = 1000  # the whole fused candidate list, so every stage is ranked in full
QUERY_KINDS = frozenset({SymbolKind.Function, SymbolKind.Method, SymbolKind.Constructor})


# ======================================================================= metrics
# A query's outcome is `ranks`: the sorted 1-based ranks at which its relevant items
# appear in a ranking (each item once), and `n_relevant`, how many relevant items exist.

def reciprocal_rank(ranks: Sequence[int], k: int = 10) -> float:
    """1/rank of the first relevant item if it is within the top k, else 0."""
    return 1.0 / ranks[0] if ranks and ranks[0] <= k else 0.0


def recall_at(ranks: Sequence[int], n_relevant: int, k: int) -> float:
    """The fraction of the relevant items found in the top k."""
    if n_relevant <= 0:
        return 0.0
    return sum(1 for r in ranks if r <= k) / n_relevant


def ndcg_at(ranks: Sequence[int], n_relevant: int, k: int = 10) -> float:
    """Binary-relevance nDCG@k: DCG of the found items over the DCG of a perfect list."""
    if n_relevant <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= k)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(n_relevant, k) + 1))
    return dcg / ideal


def metric_values(ranks: Sequence[int], n_relevant: int) -> dict[str, float]:
    """Every reported metric of one query."""
    out = {"MRR@10": reciprocal_rank(ranks, 10), "nDCG@10": ndcg_at(ranks, n_relevant, 10)}
    for k in RECALL_KS:
        out[f"R@{k}"] = recall_at(ranks, n_relevant, k)
    return out


def bootstrap_ci(values: Sequence[float], n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its percentile bootstrap interval over queries.
    Deterministic for a given seed."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(n_resamples, data.size))
    means = data[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(data.mean()), float(low), float(high))


def paired_bootstrap(after: Sequence[float], before: Sequence[float], n_resamples: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """The mean per-query difference `after - before` with its bootstrap interval."""
    if len(after) != len(before):
        raise ValueError("paired samples must have the same length")
    return bootstrap_ci([a - b for a, b in zip(after, before, strict=True)], n_resamples, seed)


def relevant_ranks(keys: Iterable[str], gold: frozenset[str]) -> list[int]:
    """Ranks (1-based) of the gold keys in a ranked key list; repeated keys (several
    chunks of one file, parts of one function) count once, at their first position."""
    seen: set[str] = set()
    ranks: list[int] = []
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        if key in gold:
            ranks.append(len(seen))
    return ranks


# ======================================================================= queries
@dataclass(frozen=True)
class Query:
    text: str
    gold: frozenset[str]  # keys: "path::qualified_name" (symbol) or "path" (file)
    id: str = ""
    hard: bool = False
    language: str = ""


def symbol_key(chunk: Chunk) -> str:
    return f"{chunk.path}::{chunk.qualified_name}"


def file_key(chunk: Chunk) -> str:
    return chunk.path


_TEST_PARTS = re.compile(r"(^|/)(tests?|testing|__tests__|spec|specs|testdata|fixtures?)(/|$)")
_TEST_NAMES = re.compile(
    r"(^test_.*|.*_tests?\.\w+|.*[._-](test|spec)\.[jt]sx?|.*Tests?\.\w+|conftest\.py)$")


def is_test_path(path: str) -> bool:
    """Tests are indexed (as distractors) but never queried or counted as gold."""
    name = path.rsplit("/", 1)[-1]
    return bool(_TEST_PARTS.search(path) or _TEST_NAMES.match(name))


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_SKIP_SUMMARY = re.compile(r"^(deprecated|see\b|todo\b|fixme\b|copyright\b|@|:)", re.I)
_DOC_TAG = re.compile(r"^\s*(@\w+|:param\b|:returns?\b|:raises?\b|Args:|Returns:|Parameters\b)")


def first_sentence(doc: str) -> str | None:
    """The query made from a doc: its first sentence (within the first paragraph, before
    any @tag), or None when that is too short or says nothing about behaviour."""
    para: list[str] = []
    for line in doc.strip().splitlines():
        if not line.strip() or _DOC_TAG.match(line):
            if para:
                break
            continue
        para.append(line.strip())
    text = " ".join(para)
    text = _SENTENCE_END.split(text, maxsplit=1)[0].strip() if text else ""
    if len(text.split()) < MIN_QUERY_WORDS or _SKIP_SUMMARY.match(text):
        return None
    return text


def is_hard(query: str, chunk: Chunk) -> bool:
    """True when the query shares no BM25 token with the symbol's name, container or path."""
    names = set(tokenize(chunk.qualified_name)) | set(path_tokens(chunk.path))
    return not (set(query_tokens(query)) & names)


# ======================================================================= stripping docs
@dataclass
class _DocCase:
    path: str
    line: int  # 1-based line of the symbol's name in the original text
    name: str
    summary: str


def _python_docs(text: str) -> tuple[set[int], dict[int, str], list[tuple[int, str, str]]] | None:
    """(lines to delete, lines to replace by `pass`, [(def line, name, doc)]) for Python."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    lines = text.splitlines()
    delete: set[int] = set()
    replace: dict[int, str] = {}
    cases: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if not body or not isinstance(body[0], ast.Expr):
            continue
        value = body[0].value
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        first, last = value.lineno, value.end_lineno or value.lineno
        start_line = lines[first - 1] if first - 1 < len(lines) else ""
        # Only a docstring that owns its lines can be cut out cleanly.
        if start_line[: value.col_offset].strip() or (
                last - 1 < len(lines) and lines[last - 1][value.end_col_offset or 0:].strip()
                not in ("", ";")):
            continue
        span = set(range(first, last + 1))
        if len(body) == 1 and not isinstance(node, ast.Module):
            replace[first] = " " * value.col_offset + "pass"
            span.discard(first)
        delete |= span
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node) or ""
            cases.append((node.lineno, node.name, doc))
    return delete, replace, cases


_COMMENT_START = ("///", "//!", "//", "/*")


def _comment_docs(path: str, text: str) -> tuple[set[int], list[tuple[int, str, str]]]:
    """Leading doc comments of every symbol the chunker finds (JS/TS/Go/Rust/Java…): the
    comment lines between a chunk's first line and the line of its name."""
    lines = text.splitlines()
    delete: set[int] = set()
    cases: list[tuple[int, str, str]] = []
    for chunk in chunk_file(path, text).chunks:
        if not chunk.is_symbol or chunk.part or chunk.name_line <= chunk.start_line:
            continue
        doc_lines: list[str] = []
        in_block = False
        for n in range(chunk.start_line, chunk.name_line):
            raw = lines[n - 1].strip() if n - 1 < len(lines) else ""
            if in_block or raw.startswith(_COMMENT_START):
                delete.add(n)
                in_block = (in_block or raw.startswith("/*")) and "*/" not in raw
                body = re.sub(r"^(///?!?|/\*\*?|\*/|\*)\s?", "", raw)
                doc_lines.append(body.replace("*/", "").strip())
        if doc_lines and chunk.kind in QUERY_KINDS:
            cases.append((chunk.name_line, chunk.name, "\n".join(doc_lines)))
    return delete, cases


def strip_docs(path: str, text: str) -> tuple[str, list[_DocCase], Callable[[int], int]]:
    """The text without docstrings / leading doc comments, the doc cases of its functions
    (symbol name lines in the *original* text), and a map original line → stripped line."""
    language = detect_language(path, text[:200].split("\n", 1)[0])
    replace: dict[int, str] = {}
    raw_cases: list[tuple[int, str, str]] = []
    if language == "python":
        found = _python_docs(text)
        if found is None:
            return text, [], lambda n: n
        delete, replace, raw_cases = found
    elif language is None or language in ("markdown", "text"):
        return text, [], lambda n: n
    else:
        delete, raw_cases = _comment_docs(path, text)
    out: list[str] = []
    new_line: dict[int, int] = {}
    for n, line in enumerate(text.splitlines(keepends=True), start=1):
        if n in delete:
            continue
        out.append(replace[n] + "\n" if n in replace else line)
        new_line[n] = len(out)
    cases = []
    for name_line, name, doc in raw_cases:
        summary = first_sentence(doc)
        if summary is not None and not is_test_path(path):
            cases.append(_DocCase(path, name_line, name, summary))
    return "".join(out), cases, lambda n: new_line.get(n, 0)


@dataclass
class DocstringCorpus:
    files: dict[str, str]  # path -> stripped text (every file, tests too)
    queries: list[Query]
    stats: dict[str, int] = field(default_factory=dict)


def _body_hash(chunk: Chunk) -> str:
    """Whitespace-insensitive hash of a symbol's code without its name line, so that a
    copied function under another name still counts as a duplicate body."""
    lines = chunk.text.splitlines()
    if chunk.name_line:
        offset = chunk.name_line - chunk.start_line
        lines = lines[offset + 1:]
    body = " ".join(" ".join(lines).split())
    return hashlib.blake2b(body.encode(), digest_size=12).hexdigest()


def docstring_corpus(files: dict[str, str], config: ChunkerConfig | None = None) -> DocstringCorpus:
    """Strip every file's docs and build the docstring → function queries (deduplicated)."""
    config = config or ChunkerConfig()
    stripped: dict[str, str] = {}
    candidates: list[tuple[_DocCase, Chunk]] = []
    key_count: Counter[str] = Counter()
    body_count: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    for path in sorted(files):
        text, cases, line_map = strip_docs(path, files[path])
        stripped[path] = text
        chunks = chunk_file(path, text, config).chunks
        by_name_line: dict[tuple[int, str], Chunk] = {}
        for c in chunks:
            if c.is_symbol and c.part == 0:
                key_count[symbol_key(c)] += 1
                body_count[_body_hash(c)] += 1
                by_name_line[(c.name_line, c.name)] = c
        for case in cases:
            stats["docs"] += 1
            chunk = by_name_line.get((line_map(case.line), case.name))
            if chunk is None:
                stats["dropped_unmatched"] += 1
                continue
            candidates.append((case, chunk))
    summary_count = Counter(_norm(case.summary) for case, _ in candidates)
    queries: list[Query] = []
    for case, chunk in candidates:
        key = symbol_key(chunk)
        if key_count[key] > 1:
            stats["dropped_ambiguous_symbol"] += 1
        elif body_count[_body_hash(chunk)] > 1:
            stats["dropped_duplicate_body"] += 1
        elif summary_count[_norm(case.summary)] > 1:
            stats["dropped_duplicate_summary"] += 1
        else:
            queries.append(Query(case.summary, frozenset({key}), id=key,
                                 hard=is_hard(case.summary, chunk), language=chunk.language))
    stats["queries"] = len(queries)
    stats["files"] = len(files)
    return DocstringCorpus(stripped, queries, dict(stats))


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def write_tree(files: dict[str, str], root: Path) -> None:
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def read_tree(root: Path, settings: Settings) -> dict[str, str]:
    """Every file the workspace rules include, as text (unreadable/binary ones skipped)."""
    from semcode.workspace import FileSkipped, Workspace

    workspace = Workspace(root, settings)
    files: dict[str, str] = {}
    for entry in workspace.scan():
        try:
            files[entry.rel_path] = workspace.read_text(entry.rel_path)
        except FileSkipped:
            continue
    return files


# ======================================================================= commits
@dataclass(frozen=True)
class CommitCase:
    sha: str
    parent: str
    message: str
    gold: frozenset[str]  # paths, as they are in the parent's tree


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, errors="replace").stdout


def commit_cases(repo: Path, max_cases: int = 200, max_files: int = MAX_COMMIT_FILES,
                 scan: int = 5000) -> list[CommitCase]:
    """Usable commits, oldest first: not merges or reverts, ≤ max_files changed, with at
    least one modified or deleted non-test source file (the gold, which exists at the
    parent)."""
    log = _git(repo, "log", "--no-merges", f"-n{scan}", "--format=%H%x00%P%x00%B%x1e")
    cases: list[CommitCase] = []
    for record in log.split("\x1e"):
        parts = record.strip("\n").split("\x00")
        if len(parts) != 3:
            continue
        sha, parents, message = parts[0].strip(), parts[1].split(), parts[2].strip()
        if len(parents) != 1 or not message or re.match(r"(?i)revert\b", message):
            continue
        changes = _git(repo, "diff-tree", "-r", "-M", "--no-commit-id", "--name-status",
                       parents[0], sha).splitlines()
        if not changes or len(changes) > max_files:
            continue
        gold = set()
        for line in changes:
            fields = line.split("\t")
            status, old = fields[0], fields[1] if len(fields) > 1 else ""
            if status[:1] in ("M", "D", "R") and _is_source(old) and not is_test_path(old):
                gold.add(old)
        if gold:
            cases.append(CommitCase(sha, parents[0], message, frozenset(gold)))
        if len(cases) >= max_cases:
            break
    cases.reverse()
    return cases


def _is_source(path: str) -> bool:
    language = detect_language(path)
    return language is not None and language not in ("markdown", "text", "json", "yaml", "toml")


class TreeCheckout:
    """A plain directory that holds one commit's tree at a time; moving between commits
    writes only the files that differ, so the index re-chunks (and re-embeds) only those."""

    def __init__(self, repo: Path, root: Path) -> None:
        self.repo = repo
        self.root = root
        self.commit: str | None = None

    def checkout(self, commit: str) -> None:
        if self.commit is None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", str(self.repo), "archive", commit],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(self.root)], input=archive, check=True)
        elif self.commit != commit:
            changed = _git(self.repo, "diff", "--no-renames", "--name-only", "-z", self.commit,
                           commit).split("\x00")
            for rel in filter(None, changed):
                target = self.root / rel
                blob = subprocess.run(["git", "-C", str(self.repo), "show", f"{commit}:{rel}"],
                                      capture_output=True)
                if blob.returncode == 0:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(blob.stdout)
                elif target.exists():
                    target.unlink()
        self.commit = commit


# ======================================================================= evaluation
@dataclass
class QueryResult:
    query: Query
    ranks: dict[str, list[int]]  # stage -> relevant ranks
    latency_ms: dict[str, float] = field(default_factory=dict)

    def metrics(self, stage: str) -> dict[str, float]:
        return metric_values(self.ranks.get(stage, []), len(self.query.gold))


def stage_rankings(hits: Sequence[Any], mode: str,
                   reranked: Sequence[Any] | None) -> dict[str, list[Any]]:
    """Each stage's ranked chunks from one response (limit ≥ all candidates) in `mode`
    (what the engine ran): lexical and dense by their own ranks, fused in order, and the
    reranked list."""
    out: dict[str, list[Any]] = {}
    for stage in ("lexical", "dense"):
        if mode in (stage, "hybrid"):
            ranked = [h for h in hits if stage in h.stages]
            out[stage] = [h.chunk for h in sorted(ranked, key=lambda h: h.stages[stage].rank)]
    out["fused"] = [h.chunk for h in hits]
    if reranked is not None:
        out["reranked"] = [h.chunk for h in reranked]
    return out


def evaluate(engine: Any, queries: Sequence[Query], key: Callable[[Chunk], str],
             rerank: bool = True, progress: Callable[[int, int], None] | None = None,
             results: list[QueryResult] | None = None) -> list[QueryResult]:
    """Run every query through the engine's first stage (and the reranker when asked and
    configured); return each stage's relevant ranks per query."""
    from semcode.search.engine import SearchRequest

    results = [] if results is None else results
    for n, query in enumerate(queries, start=1):
        req = SearchRequest(query=query.text[:10_000], limit=SEARCH_LIMIT, mode="hybrid",
                            rerank=rerank)
        t = time.perf_counter()
        first = engine.search(req)
        latency = {"first_stage": (time.perf_counter() - t) * 1000}
        second = None
        if rerank:
            t = time.perf_counter()
            response = engine.rerank(req, first)
            if response.reranked:
                second = response.hits
                latency["rerank"] = (time.perf_counter() - t) * 1000
        rankings = stage_rankings(first.hits, first.mode, second)
        ranks = {stage: relevant_ranks((key(c) for c in chunks), query.gold)
                 for stage, chunks in rankings.items()}
        results.append(QueryResult(query, ranks, latency))
        if progress:
            progress(n, len(queries))
    return results


def summarize(results: Sequence[QueryResult], seed: int = 0,
              n_resamples: int = 1000) -> dict[str, Any]:
    """Per stage: each metric's mean and 95% bootstrap interval; the reranker's paired
    effect on MRR@10 and nDCG@10; the same for the hard slice when it is marked."""

    def block(rs: Sequence[QueryResult]) -> dict[str, Any]:
        stages = [s for s in STAGES if rs and all(s in r.ranks for r in rs)]
        out: dict[str, Any] = {"n": len(rs), "stages": {}}
        for stage in stages:
            values = [r.metrics(stage) for r in rs]
            out["stages"][stage] = {
                m: _ci(bootstrap_ci([v[m] for v in values], n_resamples, seed))
                for m in values[0]}
        if "reranked" in stages:
            out["rerank_delta"] = {
                m: _ci(paired_bootstrap([r.metrics("reranked")[m] for r in rs],
                                        [r.metrics("fused")[m] for r in rs], n_resamples, seed))
                for m in ("MRR@10", "nDCG@10", "R@1")}
        return out

    summary = {"all": block(results)}
    hard = [r for r in results if r.query.hard]
    if hard:
        summary["hard"] = block(hard)
    return summary


def _ci(t: tuple[float, float, float]) -> dict[str, float]:
    return {"mean": round(t[0], 4), "lo": round(t[1], 4), "hi": round(t[2], 4)}


def markdown_table(title: str, summary: dict[str, Any]) -> str:
    """One Markdown table per slice: stages as rows, metrics as columns (mean [95% CI])."""
    lines: list[str] = []
    for slice_name, block in summary.items():
        stages = block.get("stages", {})
        lines.append(f"**{title}** — {slice_name} ({block['n']} queries)\n")
        if not stages:
            lines.append("_no queries_\n")
            continue
        metrics = list(next(iter(stages.values())))
        lines.append("| stage | " + " | ".join(metrics) + " |")
        lines.append("|---|" + "---|" * len(metrics))
        for stage, values in stages.items():
            cells = [_fmt(values[m]) for m in metrics]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
        delta = block.get("rerank_delta")
        if delta:
            cells = [f"{m} {_fmt(v, signed=True)}" for m, v in delta.items()]
            lines.append(f"\nreranked − fused (paired): {', '.join(cells)}")
        lines.append("")
    return "\n".join(lines)


def _fmt(v: dict[str, float], signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{v['mean']:{sign}.3f} [{v['lo']:{sign}.3f}, {v['hi']:{sign}.3f}]"


# ======================================================================= protocol runners
def _open_engine(root: Path, settings: Settings) -> Any:
    from semcode.search.engine import Engine

    engine = Engine.open(root, settings)
    engine.sync()
    engine.embed_pending()
    engine.indexer.rebuild_lexical_if_needed(background=False)
    return engine


def _sample(items: list[Any], n: int, seed: int) -> list[Any]:
    if len(items) <= n:
        return items
    keep = set(random.Random(seed).sample(range(len(items)), n))
    return [x for i, x in enumerate(items) if i in keep]


def run_docstring(files: dict[str, str], settings: Settings, work_dir: Path,
                  max_queries: int = 200, seed: int = 0, rerank: bool = True,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The docstring protocol on `files` (path -> original text): strip, write to
    `work_dir/tree`, index with the engine, query. Returns results and timings."""
    corpus = docstring_corpus(files, ChunkerConfig(settings.max_chunk_lines,
                                                   settings.chunk_overlap_lines,
                                                   settings.window_lines))
    queries = _sample(corpus.queries, max_queries, seed)
    tree = work_dir / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    write_tree(corpus.files, tree)
    t = time.perf_counter()
    engine = _open_engine(tree, settings)
    index_s = time.perf_counter() - t
    if log:
        log(f"docstring: {len(corpus.files)} files, {len(queries)} queries "
            f"(of {len(corpus.queries)}), indexed in {index_s:.1f}s")
    try:
        t = time.perf_counter()
        results = evaluate(engine, queries, symbol_key, rerank)
        query_s = time.perf_counter() - t
        notices = sorted(set(engine.models.notices()))
    finally:
        engine.close()
        engine.models.close()
    return {"protocol": "docstring", "corpus": corpus.stats, "results": results,
            "summary": summarize(results, seed), "index_s": index_s, "query_s": query_s,
            "notices": notices}


def run_commit(repo: Path, settings: Settings, work_dir: Path, max_queries: int = 200,
               seed: int = 0, rerank: bool = True,
               log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The commit protocol on a git repository: each commit's message searched in its
    parent's tree (one working tree moved commit to commit; the index follows)."""
    cases = _sample(commit_cases(repo, max_cases=max_queries * 2), max_queries, seed)
    checkout = TreeCheckout(repo, work_dir / "commit-tree")
    results: list[QueryResult] = []
    if log:
        log(f"commit: {len(cases)} commits from {repo}")
    t = time.perf_counter()
    engine = None
    try:
        for case in cases:
            checkout.checkout(case.parent)
            if engine is None:
                engine = _open_engine(checkout.root, settings)
            else:
                engine.sync()
                engine.embed_pending()
                engine.indexer.rebuild_lexical_if_needed(background=False)
            query = Query(case.message, case.gold, id=case.sha[:12])
            evaluate(engine, [query], file_key, rerank, results=results)
        notices = sorted(set(engine.models.notices())) if engine else []
    finally:
        if engine is not None:
            engine.close()
            engine.models.close()
    return {"protocol": "commit", "corpus": {"commits": len(cases)}, "results": results,
            "summary": summarize(results, seed), "query_s": time.perf_counter() - t,
            "notices": notices}


def result_json(run: dict[str, Any]) -> dict[str, Any]:
    """A protocol run as JSON: the summary plus each query's ranks (for re-analysis)."""
    out = {k: v for k, v in run.items() if k != "results"}
    out["queries"] = [{"id": r.query.id, "query": r.query.text[:300], "hard": r.query.hard,
                       "gold": sorted(r.query.gold), "ranks": r.ranks,
                       "latency_ms": {k: round(v, 2) for k, v in r.latency_ms.items()}}
                      for r in run["results"]]
    return out


# ======================================================================= `semcode eval`
def add_parser(subparsers: Any) -> None:
    """Add the `eval` subcommand to the CLI's subparsers."""
    from semcode.cli import add_model_options

    p = subparsers.add_parser(
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


def run(args: argparse.Namespace) -> int:
    """`semcode eval`: returns the process exit status."""
    from semcode.cli import settings_from_args, workspace_root

    root = workspace_root(args.workspace)
    settings = settings_from_args(args, root)
    rerank = settings.rerank and not getattr(args, "no_rerank", False)
    protocols = ("docstring", "commit") if args.protocol == "both" else (args.protocol,)

    def log(line: str) -> None:
        print(f"semcode eval: {line}", file=sys.stderr)

    runs: list[dict[str, Any]] = []
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
                return 2
    if args.json:
        print(json.dumps([result_json(r) for r in runs], indent=2))
    else:
        for r in runs:
            print(markdown_table(r["protocol"], r["summary"]))
            for line in r["notices"]:
                log(line)
    return 0
