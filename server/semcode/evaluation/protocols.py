"""What the quality protocols measure with: queries and their gold answers, the docstring
protocol's stripped corpus, and the commit protocol's cases.

* **docstring → function** (the CodeSearchNet protocol). Every docstring and leading doc
  comment (Python docstrings; `//`, `///`, `/** */` blocks; Ruby/PHP `#` blocks) is
  stripped from *all* the code. Each function or method with a doc gives one query: the
  first sentence of its doc (at least 4 words, not "Deprecated…"/"See…"); the gold answer
  is that symbol (path + qualified name). Queries whose symbol is ambiguous, whose body is
  duplicated elsewhere, or whose summary is not unique are dropped. Test files are
  indexed as distractors but never queried.
* **commit → changed files**: the commit's message is the query; the gold answers are
  the non-test source files it modified, searched in the tree of its parent.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from semcode.chunking import ChunkerConfig, chunk_file
from semcode.chunking.languages import detect_language
from semcode.chunks import Chunk, SymbolKind
from semcode.config import Settings
from semcode.index.tokenizer import path_tokens, query_tokens, tokenize
from semcode.workspace import FileSkipped, Workspace

MIN_QUERY_WORDS = 4
MAX_COMMIT_FILES = 20
QUERY_KINDS = frozenset({SymbolKind.Function, SymbolKind.Method, SymbolKind.Constructor})


# ======================================================================= queries
@dataclass(frozen=True)
class Query:
    """One search with its gold answers (keys as `symbol_key`/`file_key` make them)."""

    text: str
    gold: frozenset[str]  # keys: "path::qualified_name" (symbol) or "path" (file)
    id: str = ""
    hard: bool = False
    language: str = ""


def symbol_key(chunk: Chunk) -> str:
    """The gold key of a definition: `path::qualified_name`."""
    return f"{chunk.path}::{chunk.qualified_name}"


def file_key(chunk: Chunk) -> str:
    """The gold key of a file: its workspace-relative path."""
    return chunk.path


_TEST_PARTS = re.compile(
    r"(^|/)(tests?|Tests?|testing|__tests__|spec|specs|testdata|fixtures?)(/|$)")
_TEST_NAMES = re.compile(
    r"(^test_.*|.*_tests?\.\w+|.*_spec\.rb|.*[._-](test|spec)\.[jt]sx?|.*Tests?\.\w+|conftest\.py)$")


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
_HASH_COMMENT_LANGUAGES = frozenset({"ruby", "php", "bash", "perl", "r", "elixir"})
_ATTRIBUTE = re.compile(r"^(#\[|#!\[|@[A-Za-z_])")  # Rust/PHP attributes, annotations
_INLINE_MARKUP = (
    (re.compile(r"\{@(?:link|linkplain|code|literal)\s+([^}]*)\}"), r"\1"),  # Javadoc/JSDoc
    (re.compile(r"\[`?([^\]`]+)`?\]\([^)]*\)"), r"\1"),  # Markdown links
    (re.compile(r"\[`([^\]`]+)`\]"), r"\1"),  # rustdoc intra-doc links
    (re.compile(r"</?(p|code|b|i|em|strong|tt|br|pre)\s*/?>", re.I), ""),  # Javadoc HTML
    (re.compile(r"^[@\\](brief|short|summary)\s+"), ""),  # Doxygen
)


def clean_doc_markup(text: str) -> str:
    """Doc-comment markup turned into plain text: `{@link Foo}` → Foo, rustdoc and
    Markdown links → their text, Javadoc HTML tags and Doxygen `@brief` dropped."""
    for pattern, repl in _INLINE_MARKUP:
        text = pattern.sub(repl, text)
    return text


def _is_comment(raw: str, language: str) -> bool:
    if raw.startswith(_COMMENT_START):
        return True
    return language in _HASH_COMMENT_LANGUAGES and raw.startswith("#") and not (
        raw.startswith("#[") or raw.startswith("#!"))


def _comment_docs(path: str, text: str,
                  language: str = "") -> tuple[set[int], list[tuple[int, str, str]]]:
    """Leading doc comments of every symbol the chunker finds (JS/TS/Go/Rust/Java/C/C++/
    PHP/Ruby…): the comment lines between a chunk's first line and the line of its name
    (attributes and annotations in between are kept, and are not part of the doc)."""
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
            if in_block or _is_comment(raw, language):
                delete.add(n)
                in_block = (in_block or raw.startswith("/*")) and "*/" not in raw
                if raw.startswith("//!"):
                    continue  # the enclosing module's doc, not this symbol's
                body = re.sub(r"^(///?!?|/\*\*?!?|\*/|\*|#+)\s?", "", raw)
                doc_lines.append(body.replace("*/", "").strip())
            elif doc_lines and not _ATTRIBUTE.match(raw):
                doc_lines.append("")  # a gap: what came before documented something else
        if doc_lines and chunk.kind in QUERY_KINDS:
            doc = "\n".join(doc_lines).strip()
            cases.append((chunk.name_line, chunk.name, clean_doc_markup(doc)))
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
        delete, raw_cases = _comment_docs(path, text, language)
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
    """The stripped files of the docstring protocol and its queries."""

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
    """Write {relative path: text} under `root`."""
    for rel, text in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def read_tree(root: Path, settings: Settings) -> dict[str, str]:
    """Every file the workspace rules include, as text (unreadable/binary ones skipped)."""
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
    """One usable commit: its message searched in its parent's tree."""

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
        """Make the directory hold `commit`'s tree (incrementally after the first)."""
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

