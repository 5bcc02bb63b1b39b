"""The quality benchmark's own logic on synthetic data (no downloads, no models): corpus
preparation, content kinds, summaries with macro averages, ablation tables."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import quality as qb  # noqa: E402
from bench.quality.prepare import build, sync_tree  # noqa: E402

FILES = {
    "src/args.py": 'def parse_args(argv):\n    """Turn the command line words into options."""\n'
                   "    return argv\n\n\ndef run_loop(n):\n    return n\n",
    "tests/test_args.py": "def test_parse():\n    assert parse_args([]) == []\n",
    "docs/usage.md": "# Usage\n\n## `run_loop`\n\nRuns the event loop until nothing is "
                     "left to do at all.\n\n## Other\n\nNothing to see here, move along now.\n",
}


def test_build_strips_docs_cuts_prose_and_is_deterministic() -> None:
    tree, by_style, stats = build(FILES, "demo")
    assert "Turn the command line" not in tree["src/args.py"]
    assert "Runs the event loop" not in tree["docs/usage.md"]
    assert "Nothing to see here" in tree["docs/usage.md"]  # other prose stays, a distractor
    assert [q.text for q in by_style["docstring"]] == ["Turn the command line words into options."]
    assert [next(iter(q.gold)) for q in by_style["prose"]] == ["src/args.py::run_loop"]
    assert {next(iter(q.gold)) for q in by_style["identifier"]} == {
        "src/args.py::parse_args", "src/args.py::run_loop"}  # test_parse: a test, never gold
    assert build(FILES, "demo")[1] == by_style
    assert stats["available"] == {"docstring": 1, "identifier": 2, "prose": 1}


def test_sync_tree_writes_only_differences(tmp_path: Path) -> None:
    sync_tree({"a/x.py": "1\n", "b.py": "2\n"}, tmp_path)
    before = (tmp_path / "b.py").stat().st_mtime_ns
    sync_tree({"b.py": "2\n", "c.py": "3\n"}, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "b.py", "c.py"]
    assert (tmp_path / "b.py").stat().st_mtime_ns == before


def test_content_kind_prefers_the_engine_field() -> None:
    assert qb.content_kind(SimpleNamespace(path="src/a.py", content="docs")) == "docs"
    kinds = {p: qb.content_kind(SimpleNamespace(path=p, language="python"))
             for p in ("README.md", "tests/test_a.py", "examples/demo.py", "src/a.py")}
    assert kinds == {"README.md": "docs", "tests/test_a.py": "test",
                     "examples/demo.py": "example", "src/a.py": "code"}


def _rec(lang: str, rank: int | None, qid: str, top5: list[str] | None = None) -> dict:
    return {"id": qid, "corpus": lang, "language": lang, "style": "docstring",
            "ranks": [rank] if rank else [], "n_gold": 1, "top5": top5 or ["code"] * 5,
            "split": "test"}


def test_summary_macro_weighs_languages_equally() -> None:
    recs = [_rec("go", 1, f"g{i}") for i in range(30)] + [
        _rec("c", None, f"c{i}", ["docs", "docs", "code", "code", "test"]) for i in range(10)]
    recs.append(_rec("rust", 1, "r0"))  # too few queries to weigh as much as a language
    s = qb.summarize(recs)["docstring"]
    assert s["languages"]["go"]["MRR@10"]["mean"] == 1.0
    assert s["macro_languages"] == ["c", "go"]
    assert s["macro"]["MRR@10"]["mean"] == 0.5  # not 0.76: languages, not queries
    assert s["languages"]["c"]["prose_on_top"]["mean"] == pytest.approx(0.6)
    table = qb.markdown(qb.summarize(recs), "t")
    assert "| **macro** (2 languages) |" in table and "| rust (not in macro) |" in table


def test_ablation_table_pairs_queries(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text("[variants.base]\n\n[variants.other]\nrrf_k = 10\n")
    assert qb.load_ablations(path) == {"base": {}, "other": {"rrf_k": 10}}
    base = ([_rec("go", 2, f"g{i}") for i in range(10)] + [_rec("c", 1, f"c{i}") for i in range(10)]
            + [_rec("rust", 1, "r0")])
    other = ([_rec("go", 1, f"g{i}") for i in range(10)]
             + [_rec("c", None, f"c{i}") for i in range(10)] + [_rec("rust", None, "r0")])
    table = qb.ablation_table({"base": base, "other": other})
    assert table["other"]["language_delta"]["go"]["mean"] == 0.5
    assert table["other"]["language_delta"]["c"]["mean"] == -1.0
    assert table["other"]["delta"]["mean"] == pytest.approx((0.5 - 1.0) / 2)  # rust: too few
    assert table["other"]["macro_languages"] == ["c", "go"]
    assert "| other |" in qb.ablation_markdown(table, "t")
