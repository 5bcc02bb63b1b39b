"""Reciprocal rank fusion: the formula, weights, ties and degenerate inputs."""

import pytest

from semcode.search.fusion import reciprocal_rank_fusion


def test_rrf_matches_the_formula():
    fused = reciprocal_rank_fusion({"lexical": [1, 2, 3], "dense": [3, 1]}, k=60)
    scores = {f.doc_id: f.score for f in fused}
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[2] == pytest.approx(1 / 62)
    assert [f.doc_id for f in fused] == [1, 3, 2]
    assert fused[0].ranks == {"lexical": 1, "dense": 2}


def test_weights_shift_the_order_and_zero_weight_drops_a_list():
    lists = {"lexical": [1, 2], "dense": [2, 1]}
    assert reciprocal_rank_fusion(lists, weights={"dense": 2.0})[0].doc_id == 2
    assert reciprocal_rank_fusion(lists, weights={"lexical": 2.0})[0].doc_id == 1
    only_lexical = reciprocal_rank_fusion(lists, weights={"dense": 0.0})
    assert [f.ranks for f in only_lexical] == [{"lexical": 1}, {"lexical": 2}]


def test_ties_are_deterministic_and_duplicates_count_once():
    fused = reciprocal_rank_fusion({"a": [5, 7], "b": [7, 5]})
    assert [f.doc_id for f in fused] == [5, 7]  # equal score and best rank: lower id first
    dup = reciprocal_rank_fusion({"a": [4, 4, 9]})
    assert dup[0].score == pytest.approx(1 / 61)
    assert dup[1].ranks == {"a": 3}


def test_empty_and_bad_k():
    assert reciprocal_rank_fusion({}) == []
    assert reciprocal_rank_fusion({"a": []}) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion({"a": [1]}, k=0)
