"""Definition coverage: the share of Universal Ctags' definitions that are semcode symbol
chunks, per bench language, with the misses grouped by idiom.

    python -m bench.quality.coverage [--language L,...] [--corpus NAME,...] \\
        [--out bench/out/coverage] [--examples N]

A search can only return a definition that is a chunk. Universal Ctags (the Debian
`universal-ctags` package; `ctags --output-format=json`) is the independent reference:
for every pinned corpus of `corpora.toml`, its library files (`is_gold_path`: no tests,
examples, benchmarks or docs) are written to a temporary directory, ctags tags them, and
each tag of a counted kind (`COUNTED`: functions, methods, classes, structs, interfaces,
traits, enums; Java enum constants; no prototypes, fields, variables or macros) is
*covered* when a semcode symbol chunk of the same file has the same name (its `name`, or
one of its other names: the tag of a typedef'd C struct, `chunking.names`) and its line
range holds the tag's line. Anonymous tags (ctags' `__anon…` names) and tags whose name
is not spelled on their line (ctags' guesses at computed names such as
`Axios.prototype[method] = function`) and the object literals ctags tags as JavaScript
"classes" (`const adapters = {...}`) are left out and counted apart.

A miss's idiom is the chain of tree-sitter node types at the name (the name's node and
three ancestors, e.g. `property_identifier < member_expression < assignment_expression
< expression_statement`) with the ctags kind; the report lists each idiom's count and
one example. Results: `<out>.json` (every miss) and `<out>.md` (the tables). Needs
ctags; CI does not run this (the chunker's tests hold one test per idiom).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
for entry in (str(REPO), str(REPO / "server")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from bench.quality.corpora import SOURCE_EXTS, load_manifest, read_corpus  # noqa: E402
from semcode.chunking import chunk_file, detect_language  # noqa: E402
from semcode.chunking.languages import SPECS  # noqa: E402
from semcode.chunking.names import other_names  # noqa: E402
from semcode.evaluation.styles import is_gold_path  # noqa: E402

# ctags language -> the kinds that count as definitions. Headers (`.h`) are C++ to ctags
# whatever the corpus language, so C++'s kinds are also read in C corpora.
COUNTED: dict[str, frozenset[str]] = {
    "Python": frozenset({"class", "function", "member"}),
    "JavaScript": frozenset({"class", "function", "method", "generator"}),
    "TypeScript": frozenset({"class", "function", "method", "generator", "interface", "enum"}),
    "Go": frozenset({"func", "struct", "interface"}),
    "Rust": frozenset({"function", "method", "struct", "enum", "interface"}),
    "Java": frozenset({"class", "interface", "enum", "method", "enumConstant", "annotation"}),
    "C": frozenset({"function", "struct", "union", "enum"}),
    "C++": frozenset({"function", "class", "struct", "union", "enum"}),
    "Ruby": frozenset({"class", "module", "method", "singletonMethod"}),
    "PHP": frozenset({"class", "interface", "trait", "enum", "function"}),
}


_TREES: dict[tuple[str, int], Any] = {}  # parsed once per file for the misses' idioms


@dataclass
class Miss:
    """A ctags definition no symbol chunk stands for."""

    corpus: str
    path: str
    line: int
    name: str
    kind: str
    idiom: str
    text: str


@dataclass
class LanguageCoverage:
    """Per bench language: counted definitions, the covered ones, the left-out tags."""

    language: str
    counted: int = 0
    covered: int = 0
    anonymous: int = 0
    unspelled: int = 0
    object_literals: int = 0
    misses: list[Miss] = field(default_factory=list)

    @property
    def share(self) -> float:
        """Covered / counted (1.0 when nothing counted)."""
        return self.covered / self.counted if self.counted else 1.0


def ctags_tags(files: dict[str, str]) -> list[dict[str, Any]]:
    """ctags' JSON tags of `files` ({relative path: text}), paths relative as given."""
    with tempfile.TemporaryDirectory(prefix="semcode-coverage-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", errors="surrogateescape")
        done = subprocess.run(
            ["ctags", "--output-format=json", "--fields=+nKzlE", "-f", "-", "-L", "-"],
            input="\n".join(files).encode(), cwd=root, capture_output=True, check=True,
        )
    tags = []
    for line in done.stdout.decode("utf-8", "replace").split("\n"):  # not splitlines: a
        if not line:  # pattern may hold U+2028
            continue
        tag = json.loads(line)
        if tag.get("_type") == "tag":
            tags.append(tag)
    return tags


def _idiom(path: str, text: str, line: int, name: str, kind: str) -> str:
    """The tree-sitter node chain at the tag's name, with the ctags kind."""
    from tree_sitter import Parser
    from tree_sitter_language_pack import get_language

    language = detect_language(path) or ""
    rows = text.split("\n")
    row_text = rows[line - 1] if 0 < line <= len(rows) else ""
    column = row_text.find(name)
    if language not in SPECS or column < 0:
        return f"{kind}: (name not on its line)"
    key = (path, len(text))
    tree = _TREES.get(key)
    if tree is None:
        parser = Parser(get_language(language))  # type: ignore[arg-type]
        tree = _TREES[key] = parser.parse(text.encode("utf-8", "surrogatepass"))
    byte_col = len(row_text[:column].encode("utf-8", "surrogatepass"))
    node = tree.root_node.named_descendant_for_point_range((line - 1, byte_col),
                                                           (line - 1, byte_col))
    chain: list[str] = []
    while node is not None and len(chain) < 4:
        chain.append(node.type)
        node = node.parent
    return f"{kind}: {' < '.join(chain)}"


def measure(corpus: dict[str, Any], result: LanguageCoverage) -> None:
    """Add one corpus' definitions to its language's coverage."""
    files = {rel: text for rel, text in read_corpus(corpus).items()
             if rel.endswith(SOURCE_EXTS) and is_gold_path(rel)}
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for tag in ctags_tags(files):
        if tag.get("kind") in COUNTED.get(tag.get("language", ""), ()):
            by_file[tag["path"]].append(tag)
    for path, tags in sorted(by_file.items()):
        text = files[path]
        rows = text.split("\n")
        spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for chunk in chunk_file(path, text).chunks:
            if chunk.is_symbol:
                for name in (chunk.name, *other_names(chunk)):
                    spans[name].append((chunk.start_line, chunk.end_line))
        for tag in tags:
            name, line = tag["name"], int(tag.get("line", 0))
            if name.startswith("__anon") or "anonymous" in tag.get("extras", ""):
                result.anonymous += 1
                continue
            row_text = rows[line - 1] if 0 < line <= len(rows) else ""
            if re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", row_text) is None or \
                    re.search(rf"{re.escape(name)}(\.prototype)?\[[^\]]*\]\s*=[^=]", row_text):
                result.unspelled += 1  # a name ctags guessed: `X.prototype[method] = ...`
                continue
            if tag["kind"] == "class" and tag.get("language") in ("JavaScript", "TypeScript") \
                    and "class" not in row_text:
                result.object_literals += 1  # ctags' "class" for `const x = {...}`
                continue
            result.counted += 1
            if any(first <= line <= last for first, last in spans.get(name, ())):
                result.covered += 1
                continue
            result.misses.append(Miss(corpus["name"], path, line, name, tag["kind"],
                                      _idiom(path, text, line, name, tag["kind"]),
                                      row_text.strip()[:120]))


def markdown(results: list[LanguageCoverage], examples: int) -> str:
    """The coverage table and, per language, its misses by idiom."""
    out = ["| language | ctags definitions | semcode symbol chunks | coverage | misses |"
           " left out (anonymous / computed names / object literals) |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        out.append(f"| {r.language} | {r.counted} | {r.covered} | {r.share:.3f} | "
                   f"{len(r.misses)} | {r.anonymous} / {r.unspelled} / {r.object_literals} |")
    for r in results:
        if not r.misses:
            continue
        out += ["", f"**{r.language}** misses by idiom:", ""]
        idioms = Counter(m.idiom for m in r.misses)
        for idiom, count in idioms.most_common():
            shown = [m for m in r.misses if m.idiom == idiom][:examples]
            sample = "; ".join(f"`{m.corpus}/{m.path}:{m.line}` `{m.text}`" for m in shown)
            out.append(f"- {count} × `{idiom}`: {sample}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure, write `<out>.json` and `<out>.md`, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--language", default="", help="comma list of bench languages")
    ap.add_argument("--corpus", default="", help="comma list of corpus names")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "coverage")
    ap.add_argument("--examples", type=int, default=2, help="examples per idiom")
    args = ap.parse_args(argv)
    if shutil.which("ctags") is None:
        print("coverage: needs Universal Ctags (apt-get install universal-ctags)",
              file=sys.stderr)
        return 2
    languages = {x for x in args.language.split(",") if x}
    names = {x for x in args.corpus.split(",") if x}
    results: dict[str, LanguageCoverage] = {}
    for corpus in load_manifest():
        if (languages and corpus["language"] not in languages) or \
                (names and corpus["name"] not in names):
            continue
        language = corpus["language"]
        measure(corpus, results.setdefault(language, LanguageCoverage(language)))
    ordered = [results[k] for k in sorted(results)]
    report = markdown(ordered, args.examples)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(report)
    args.out.with_suffix(".json").write_text(json.dumps(
        [{"language": r.language, "counted": r.counted, "covered": r.covered,
          "coverage": round(r.share, 4), "anonymous": r.anonymous, "computed": r.unspelled,
          "object_literals": r.object_literals,
          "misses": [m.__dict__ for m in r.misses]} for r in ordered], indent=1))
    print(report.split("\n\n", 1)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
