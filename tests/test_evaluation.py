"""The quality harness: metrics against hand-computed values, doc extraction and
stripping, the commit protocol on a temporary repository, one lexical end-to-end run."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import semcode
from semcode.chunking.chunker import chunk_file
from semcode.config import Settings
from semcode.evaluation import (
    bootstrap_ci,
    commit_cases,
    docstring_corpus,
    first_sentence,
    is_test_path,
    markdown_table,
    ndcg_at,
    paired_bootstrap,
    recall_at,
    reciprocal_rank,
    relevant_ranks,
    run_commit,
    run_docstring,
    stratified_bootstrap,
    strip_docs,
)
from semcode.evaluation.styles import (
    Definitions,
    cut_lines,
    definitions,
    header_doc_queries,
    identifier_queries,
    prose_queries,
)


# ---------------------------------------------------------------- metrics
def test_reciprocal_rank() -> None:
    assert reciprocal_rank([3, 7]) == pytest.approx(1 / 3)
    assert reciprocal_rank([1]) == 1.0
    assert reciprocal_rank([11]) == 0.0  # beyond @10
    assert reciprocal_rank([]) == 0.0


def test_recall() -> None:
    assert recall_at([1, 4, 60], 4, 5) == 0.5
    assert recall_at([1, 4, 60], 4, 100) == 0.75
    assert recall_at([], 2, 10) == 0.0


def test_ndcg_hand_computed() -> None:
    # one relevant item at rank 3: (1/log2 4) / (1/log2 2) = 0.5
    assert ndcg_at([3], 1) == pytest.approx(0.5)
    # two relevant at ranks 1 and 3: (1 + 0.5) / (1 + 1/log2 3)
    assert ndcg_at([1, 3], 2) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at([1, 2], 2) == pytest.approx(1.0)
    assert ndcg_at([12], 1) == 0.0


def test_relevant_ranks_counts_each_key_once() -> None:
    keys = ["a.py", "a.py", "b.py", "c.py", "b.py", "d.py"]
    assert relevant_ranks(keys, frozenset({"b.py", "d.py"})) == [2, 4]


def test_bootstrap_is_deterministic_and_brackets_the_mean() -> None:
    values = [0.0, 1.0, 0.5, 0.25, 1.0, 0.0, 0.2]
    a = bootstrap_ci(values, seed=7)
    assert a == bootstrap_ci(values, seed=7)
    mean, lo, hi = a
    assert mean == pytest.approx(sum(values) / len(values))
    assert lo <= mean <= hi and lo >= 0.0 and hi <= 1.0
    assert bootstrap_ci([0.5] * 5) == (0.5, 0.5, 0.5)
    delta = paired_bootstrap([1.0, 1.0, 0.5], [0.5, 1.0, 0.0], seed=1)
    assert delta[0] == pytest.approx(1 / 3)


# ---------------------------------------------------------------- docs
def test_first_sentence() -> None:
    assert first_sentence("Return the user's name. More text.") == "Return the user's name."
    assert first_sentence("Parse the config file\ninto a dict.\n\nDetails.") == \
        "Parse the config file into a dict."
    assert first_sentence("Too short.") is None
    assert first_sentence("Deprecated: use something else instead.") is None
    assert first_sentence("See the other function for details.") is None


PY = '''"""Module doc."""


class Store:
    """A store of things."""

    def get(self, key):
        """Look up one value by its key in the store.

        More words.
        """
        return self.data[key]

    def only_doc(self):
        """Do nothing at all, on purpose here."""


def helper(x):
    """Double the given number and return it."""
    return x * 2
'''

JS = '''/**
 * Compute the sum of all the values.
 * @param {number[]} values
 */
export function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}

// Format a date as an ISO string for logs.
function fmt(d) { return d.toISOString(); }
'''

GO = '''package geo

// Distance returns the great circle distance in kilometers.
func Distance(a, b Point) float64 {
	return 0
}

type Point struct{ Lat, Lon float64 }
'''


def test_strip_python() -> None:
    text, cases, line_map = strip_docs("store.py", PY)
    assert '"""' not in text
    compile(text, "store.py", "exec")  # still valid Python (a doc-only body became `pass`)
    by_name = {c.name: c for c in cases}
    assert by_name["get"].summary == "Look up one value by its key in the store."
    assert by_name["helper"].summary == "Double the given number and return it."
    assert "Store" not in by_name  # classes are stripped but not queried
    new = line_map(by_name["helper"].line)
    assert text.splitlines()[new - 1].startswith("def helper")


def test_strip_js_and_go() -> None:
    text, cases, _ = strip_docs("lib/sum.js", JS)
    assert "Compute" not in text and "Format a date" not in text and "export function sum" in text
    assert {c.name: c.summary for c in cases} == {
        "sum": "Compute the sum of all the values.",
        "fmt": "Format a date as an ISO string for logs."}
    text, cases, _ = strip_docs("geo/geo.go", GO)
    assert "great circle" not in text and "func Distance" in text
    assert [c.summary for c in cases] == [
        "Distance returns the great circle distance in kilometers."]


def test_corpus_drops_tests_duplicates_and_marks_hard() -> None:
    dup = 'def a(x):\n    """Add one to the number given here."""\n    return x + 1\n'
    files = {
        "pkg/store.py": PY,
        "pkg/geo.go": GO,
        "tests/test_store.py": 'def test_get():\n    """Check that get returns the value."""\n'
                               '    assert Store().get(1)\n',
        "pkg/one.py": dup,
        "pkg/two.py": dup.replace("def a", "def b"),  # same body: ambiguous
        "pkg/c.py": 'def c():\n    """Double the given number and return it."""\n    return 3\n',
    }
    corpus = docstring_corpus(files)
    ids = {q.id for q in corpus.queries}
    assert "pkg/store.py::Store.get" in ids
    assert "pkg/geo.go::Distance" in ids
    assert not any(i.startswith("tests/") for i in ids)
    assert not any(i.startswith(("pkg/one.py", "pkg/two.py")) for i in ids)
    # helper and c share a summary: both dropped
    assert "pkg/store.py::helper" not in ids and "pkg/c.py::c" not in ids
    assert corpus.stats["dropped_duplicate_body"] == 2
    assert corpus.stats["dropped_duplicate_summary"] == 2
    assert "tests/test_store.py" in corpus.files  # indexed as a distractor
    hard = {q.id: q.hard for q in corpus.queries}
    assert hard["pkg/store.py::Store.get"] is False  # "get" is in the name
    assert hard["pkg/store.py::Store.only_doc"] is True


def test_is_test_path() -> None:
    assert is_test_path("tests/test_x.py") and is_test_path("src/foo_test.go")
    assert is_test_path("src/a.spec.ts") and is_test_path("lib/__tests__/b.js")
    assert not is_test_path("src/testament.py") and not is_test_path("pkg/latest.go")


# ---------------------------------------------------------------- commits
def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "T")
    (repo / "src").mkdir()
    (repo / "tests").mkdir()
    (repo / "src" / "parser.py").write_text("def parse_config(text):\n    return dict()\n")
    (repo / "src" / "network.py").write_text("def fetch_url(url):\n    return url\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "Initial import")
    (repo / "src" / "parser.py").write_text(
        "def parse_config(text):\n    return dict(line.split('=') for line in text)\n")
    (repo / "tests" / "test_parser.py").write_text("def test_parse():\n    pass\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "Parse config lines into key value pairs\n\nSplit on '='.")
    (repo / "src" / "network.py").write_text("def fetch_url(url, timeout=5):\n    return url\n")
    (repo / "src" / "new.py").write_text("X = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "Add a timeout to fetch url")
    return repo


def test_commit_cases(repo: Path) -> None:
    cases = commit_cases(repo)
    assert [c.message.splitlines()[0] for c in cases] == [
        "Parse config lines into key value pairs", "Add a timeout to fetch url"]
    assert cases[0].gold == frozenset({"src/parser.py"})  # the test file is not gold
    assert cases[1].gold == frozenset({"src/network.py"})  # the added file is not either
    assert cases[0].message.endswith("Split on '='.")


def test_commit_protocol_end_to_end(repo: Path, tmp_path: Path) -> None:
    settings = Settings.from_mapping({"embedding_model": "off", "reranker_model": "off",
                                      "index_dir": str(tmp_path / "index")})
    run = run_commit(repo, settings, tmp_path / "work")
    assert len(run["results"]) == 2
    for r in run["results"]:
        assert r.ranks["fused"] == [1]  # the only matching source file, at the top
    assert run["summary"]["all"]["stages"]["lexical"]["MRR@10"]["mean"] == 1.0


def test_docstring_protocol_lexical_end_to_end(tmp_path: Path) -> None:
    files = {"pkg/store.py": PY, "pkg/geo.go": GO, "lib/sum.js": JS,
             "tests/test_store.py": "def test_get():\n    assert True\n"}
    settings = Settings.from_mapping({"embedding_model": "off", "reranker_model": "off",
                                      "index_dir": str(tmp_path / "index")})
    run = run_docstring(files, settings, tmp_path / "work")
    summary = run["summary"]["all"]
    assert summary["n"] == len(run["results"]) >= 4
    assert set(summary["stages"]) == {"lexical", "fused"}  # no embedder, no reranker
    mrr = summary["stages"]["lexical"]["MRR@10"]
    assert 0.0 <= mrr["lo"] <= mrr["mean"] <= mrr["hi"] <= 1.0
    table = markdown_table("docstring", run["summary"])
    assert "| lexical |" in table and "MRR@10" in table


# ---------------------------------------------------------------- more languages' docs
RUST = '''/// Adds two numbers together, wrapping on overflow.
///
/// # Examples
#[inline]
pub fn add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}
'''

JAVA = '''public class Text {
    /**
     * Returns the {@link String} length of the given value, in code units.
     * @param s the value
     */
    public int len(String s) {
        return s.length();
    }
}
'''

RUBY = '''# Parses the given options into a frozen hash.
# Unknown keys are kept.
def parse(opts)
  opts.freeze
end
'''

C = '''/* Computes the checksum of a buffer of bytes. */
int checksum(const char *b) {
    return 0;
}
'''


@pytest.mark.parametrize(("path", "text", "name", "summary", "gone"), [
    ("src/lib.rs", RUST, "add", "Adds two numbers together, wrapping on overflow.", "///"),
    ("src/Text.java", JAVA, "len",
     "Returns the String length of the given value, in code units.", "{@link"),
    ("lib/opts.rb", RUBY, "parse",
     "Parses the given options into a frozen hash.", "# Parses"),
    ("src/sum.c", C, "checksum", "Computes the checksum of a buffer of bytes.", "/*"),
])
def test_strip_doc_comments_of_more_languages(path: str, text: str, name: str, summary: str,
                                              gone: str) -> None:
    stripped, cases, _ = strip_docs(path, text)
    assert gone not in stripped
    assert {c.name: c.summary for c in cases} == {name: summary}
    if path.endswith(".rs"):
        assert "#[inline]" in stripped  # attributes are code, not docs


# ---------------------------------------------------------------- query styles
def _defs(files: dict[str, str]) -> Definitions:
    return definitions(c for p, t in files.items() for c in chunk_file(p, t).chunks)


CODE = {
    "src/args.py": "def parse_args(argv):\n    return argv\n\n\ndef run_loop(n):\n    return n\n",
    "src/util.py": "def helper(x):\n    return x\n",
    "tests/test_args.py": "def helper(x):\n    return x\n",  # `helper` is ambiguous
}


def test_the_one_definition_a_text_names() -> None:
    defs = _defs(CODE)
    one = defs.the_one({"parse_args", "not_defined"})
    assert one is not None and one[0] == "parse_args" and one[1].path == "src/args.py"
    assert defs.the_one({"parse_args", "run_loop"}) is None  # several
    assert defs.the_one({"nothing"}) is None

DOC_MD = '''# Usage

## `parse_args`

Read the command line words and turn them into options. It never exits.

```python
parse_args(["-v"])
```

## Looping

Call `run_loop` and `parse_args` together to start everything up here.

## Helpers

The `helper` function returns its single argument unchanged every time.
'''

DOC_RST = '''API
===

.. c:function:: int run_loop(int n)

    Runs the event loop until there are no more active handles left.

Other
=====

Unrelated text about nothing in particular at all here.
'''

CHANGES = '''Version 2.0
-----------

-   Fix ``parse_args`` so that an empty list of words gives
    no options at all. :issue:`123`
-   Rename ``run_loop`` and ``parse_args`` arguments for clarity today.
'''


def test_prose_queries_name_exactly_one_unambiguous_definition() -> None:
    defs = _defs(CODE)
    assert set(defs.unique) == {"parse_args", "run_loop"}  # helper: twice; tests never gold
    docs = {"docs/usage.md": DOC_MD, "docs/api.rst": DOC_RST, "CHANGES.rst": CHANGES}
    queries, cut = prose_queries(docs, defs)
    by_gold: dict[str, list[str]] = {}
    for q in queries:
        by_gold.setdefault(next(iter(q.gold)), []).append(q.text)
    assert by_gold["src/args.py::parse_args"] == [
        "Fix so that an empty list of words gives no options at all.",
        "Read the command line words and turn them into options. It never exits."]
    assert by_gold["src/args.py::run_loop"] == [
        "Runs the event loop until there are no more active handles left."]
    assert len(queries) == 3  # "Looping" names two, "Helpers" an ambiguous one
    usage = cut_lines(DOC_MD, cut["docs/usage.md"])
    assert "Read the command line" not in usage and "Call `run_loop`" in usage
    assert "Runs the event loop" not in cut_lines(DOC_RST, cut["docs/api.rst"])
    assert "empty list" not in cut_lines(CHANGES, cut["CHANGES.rst"])


def test_identifier_queries_are_seeded_and_unambiguous() -> None:
    defs = _defs(CODE)
    a = identifier_queries(defs, "seed")
    assert a == identifier_queries(defs, "seed")
    assert {q.id for q in a} == {"identifier:parse_args", "identifier:run_loop"}
    for q in a:
        assert q.id.split(":")[1] in q.text
        assert next(iter(q.gold)) == f"src/args.py::{q.id.split(':')[1]}"


def test_stratified_bootstrap_weighs_groups_equally() -> None:
    mean, lo, hi = stratified_bootstrap([[1.0] * 100, [0.0] * 2], seed=3)
    assert mean == 0.5 and lo == hi == 0.5
    mean, lo, hi = stratified_bootstrap([[0.0, 1.0, 1.0], [0.5, 0.25]], seed=3)
    assert lo <= mean <= hi
    assert stratified_bootstrap([[0.2, 0.4], []], seed=0)[0] == pytest.approx(0.3)


def test_evaluation_does_not_import_the_cli() -> None:
    code = ("import sys, semcode.evaluation, semcode.evaluation.styles; "
            "sys.exit('semcode.cli' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(Path(semcode.__file__).parent.parent)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_header_doc_queries_point_at_the_definition() -> None:
    header = ('/**\n * json_thing - Create a new thing with the given name.\n */\n\n'
              'API(int)\njson_thing(const char *name);\n\n'
              '/* license or other comment */\nint other(void);\n')
    defs = _defs({"src/thing.c": "int json_thing(const char *name) {\n    return 0;\n}\n"})
    queries, strip = header_doc_queries("include/thing.h", header, defs)
    assert [(q.text, next(iter(q.gold))) for q in queries] == [
        ("Create a new thing with the given name.", "src/thing.c::json_thing")]
    stripped = cut_lines(header, strip)
    assert "Create a new thing" not in stripped and "license" in stripped
