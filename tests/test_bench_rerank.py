"""The rerank bench tools run on real pieces: the latency bench on a tiny BERT classifier
(its report and the `speed` block `auto` reads), rerank_fit's on-disk score cache and its
fit (weight 0 unless the reranker helps). No timing is asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import rerank_fit  # noqa: E402
from bench.quality.tune import Q  # noqa: E402
from bench.speed import rerank as rerank_speed  # noqa: E402

from semcode.chunks import Chunk, SymbolKind  # noqa: E402
from semcode.search.intent import classify_query  # noqa: E402
from semcode.search.results import Hit, StageScore  # noqa: E402
from tiny_bert import write_tiny_bert  # noqa: E402

SERVER = Path(__file__).resolve().parent.parent / "server" / "semcode" / "search"


def test_latency_bench_reports_and_records(tmp_path: Path) -> None:
    model = write_tiny_bert(tmp_path / "m")
    meta = tmp_path / "semcode.json"
    meta.write_text(json.dumps({"recipe": "classifier"}))
    out = tmp_path / "speed.json"
    assert rerank_speed.main([str(model), "--depths", "2,5", "--reps", "2", "--threads", "1",
                              "--corpus", str(SERVER), "--out", str(out),
                              "--record", str(meta)]) == 0
    run = json.loads(out.read_text())["runs"][0]
    assert run["recipe"] == "classifier" and run["max_tokens"] == 128  # the tiny model's context
    assert [d["depth"] for d in run["depths"]] == [2, 5]
    assert all(d["wall_p50_ms"] > 0 and d["wall_p95_ms"] >= d["wall_p50_ms"]
               for d in run["depths"])
    recorded = json.loads(meta.read_text())
    assert recorded["recipe"] == "classifier"  # kept; `speed` merged in
    assert recorded["speed"]["tokens_per_s"] > 0 and recorded["speed"]["gflops"] > 0
    assert 4 < recorded["speed"]["pair_tokens"] <= 128


class CountingReranker:
    """Scores a text by its length; counts the pairs it was asked for."""

    class info:  # noqa: N801 - mimics ModelInfo
        identity = "counting"

    def __init__(self) -> None:
        self.pairs = 0

    def score(self, query: str, texts: list[str]) -> list[float]:
        self.pairs += len(texts)
        return [float(len(t)) for t in texts]


def test_score_cache_scores_each_pair_once(tmp_path: Path) -> None:
    cache = rerank_fit.ScoreCache(tmp_path / "scores.sqlite")
    r = CountingReranker()
    assert cache.scores(r, "q", ["a", "bb"]) == [1.0, 2.0] and r.pairs == 2
    assert cache.scores(r, "q", ["bb", "ccc", "a"]) == [2.0, 3.0, 1.0] and r.pairs == 3
    again = rerank_fit.ScoreCache(tmp_path / "scores.sqlite")  # on disk: a new run resumes
    assert again.scores(r, "q", ["ccc"]) == [3.0] and r.pairs == 3
    assert again.scores(r, "another query", ["ccc"]) == [3.0] and r.pairs == 4


def scored(helpful: bool, n: int = 12) -> list[dict[str, Any]]:
    """n queries whose gold is the first stage's second hit; a helpful reranker scores the
    gold highest, an unhelpful one lowest."""
    out = []
    for i in range(n):
        chunks = [Chunk(path=f"src/m{i}.py", start_line=j + 1, end_line=j + 1,
                        name=f"f{j}", kind=SymbolKind.Function, container="",
                        language="python", text=f"def f{j}(): pass") for j in range(5)]
        hits = [Hit(j, c, 1.0 / (j + 1), {"ranking": StageScore(j + 1, 1.0 / (j + 1))})
                for j, c in enumerate(chunks)]
        gold = frozenset({f"src/m{i}.py::f1"})
        q = Q("python", "c", "docstring", gold, classify_query("where is it done"), {}, {},
              {}, "where is it done")
        scores = [0.0, 5.0, 1.0, 0.5, 0.2] if helpful else [3.0, -5.0, 2.0, 1.0, 0.5]
        out.append({"q": q, "id": str(i), "hits": hits, "scores": scores})
    return out


def test_fit_takes_a_weight_only_when_it_helps() -> None:
    good = rerank_fit.fit(scored(helpful=True), depth=5, min_gain=0.002)
    assert good["helps"] and good["weight"] > 0
    assert good["first_stage_macro"] == 0.5 and good["best_macro"] == 1.0
    bad = rerank_fit.fit(scored(helpful=False), depth=5, min_gain=0.002)
    assert not bad["helps"] and bad["weight"] == 0.0
    assert good["interpolation"]["macro"] == 1.0 and good["method"] == "rrf"  # ties: rrf
