"""The classifier recipe (a BERT cross-encoder: `[CLS] query [SEP] document [SEP]`, rank
pooling, the raw logit) on the real llama.cpp, with tiny BERT GGUFs the tests write
(tests/tiny_bert.py); its detection beside the yes/no recipe; and the built-in reranker's
folder, `semcode.json` and `auto` choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from semcode.config import Settings
from semcode.kinds import BlendMethod, RerankRecipe, Role
from semcode.models import auto, builtin, hub, profiles
from semcode.models.base import ModelError, ModelMissing, RerankBlend
from semcode.models.factory import ModelRequest, build_model
from semcode.models.hub import ModelSpec
from semcode.models.llama_cpp import LlamaCppClassifier, LlamaCppReranker, open_reranker
from semcode.models.profiles import BERT_CLASSIFIER, detect_reranker_profile, reranker_recipe
from tiny_bert import CONTEXT_LENGTH, TinyBert, write_tiny_bert
from tiny_models import SAMPLE_QUERY as QUERY
from tiny_models import SAMPLE_TEXTS as TEXTS


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-bert")


@pytest.fixture(scope="module")
def classifier_gguf(bert_dir: Path) -> Path:
    return write_tiny_bert(bert_dir)  # what the converter writes: labels, no pooling key


@pytest.fixture(scope="module")
def classifier(classifier_gguf: Path):
    # A small batch so that scoring below spans several decodes.
    r = LlamaCppClassifier(classifier_gguf, n_threads=1, batch_tokens=CONTEXT_LENGTH)
    yield r
    r.close()


# ----------------------------------------------------------------------------- detection


def test_converted_classifier_is_detected_from_its_labels(classifier_gguf: Path) -> None:
    r = open_reranker(classifier_gguf, n_threads=1)
    try:
        assert isinstance(r, LlamaCppClassifier)
        assert r.profile.recipe == RerankRecipe.CLASSIFIER
        assert r.max_tokens == CONTEXT_LENGTH  # the profile's 256, cut to the model's context
        assert r.info.backend == "llama.cpp" and "bert-classifier" in r.info.identity
    finally:
        r.close()


def test_declared_rank_pooling_is_a_classifier_too(bert_dir: Path) -> None:
    path = write_tiny_bert(bert_dir, TinyBert(pooling_rank=True, labels=()))
    r = open_reranker(path, n_threads=1)
    try:
        assert isinstance(r, LlamaCppClassifier)
    finally:
        r.close()


def test_recipe_detection_from_metadata_alone() -> None:
    bert = {"general.architecture": "bert", "bert.classifier.output_labels": "LABEL_0"}
    assert reranker_recipe(bert, "m.gguf") == RerankRecipe.CLASSIFIER
    assert reranker_recipe({"general.architecture": "bert", "bert.pooling_type": "4"},
                           "m.gguf") == RerankRecipe.CLASSIFIER
    # A decoder (Qwen3-Reranker, with or without a chat template) is asked yes or no,
    # even when its conversion carries a rank head.
    qwen = {"general.architecture": "qwen3", "qwen3.pooling_type": "4",
            "tokenizer.chat_template": "{{ messages }}"}
    assert reranker_recipe(qwen, "q.gguf") == RerankRecipe.YES_NO
    assert detect_reranker_profile(qwen, "q.gguf").name == "qwen3-reranker"
    with pytest.raises(ModelError, match="without a classification head"):
        reranker_recipe({"general.architecture": "bert", "bert.pooling_type": "1"}, "e.gguf")
    with pytest.raises(ModelError, match="chat template"):
        reranker_recipe({**bert, "tokenizer.chat_template": "x"}, "m.gguf")


def test_an_encoder_without_a_head_is_refused(bert_dir: Path) -> None:
    path = write_tiny_bert(bert_dir, TinyBert(labels=(), head=False))
    with pytest.raises(ModelError, match="without a classification head") as exc:
        open_reranker(path)
    assert "\n" not in str(exc.value)


def test_two_outputs_are_refused(bert_dir: Path) -> None:
    path = write_tiny_bert(bert_dir, TinyBert(labels=("irrelevant", "relevant")))
    with pytest.raises(ModelError, match="2 outputs"):
        open_reranker(path)


def test_a_chat_template_makes_the_recipe_unclear(bert_dir: Path) -> None:
    path = write_tiny_bert(bert_dir, TinyBert(chat_template="{{ bos_token }}"))
    with pytest.raises(ModelError, match="chat template"):
        open_reranker(path)


def test_recipes_do_not_load_as_each_other(classifier_gguf: Path, tiny_models) -> None:
    with pytest.raises(ModelError, match="classifier reranker, not yes/no"):
        LlamaCppReranker(classifier_gguf)
    with pytest.raises(ModelError, match="not a classifier"):
        LlamaCppClassifier(tiny_models.reranker)
    with pytest.raises(ModelError, match="profile 'bert-classifier' is for a classifier"):
        open_reranker(tiny_models.reranker, profile=BERT_CLASSIFIER)
    yes_no = open_reranker(tiny_models.reranker, n_threads=1)
    try:
        assert isinstance(yes_no, LlamaCppReranker)  # the Qwen3 recipe, as before
        assert yes_no.profile.recipe == RerankRecipe.YES_NO
    finally:
        yes_no.close()


def test_a_truncated_classifier_file_is_one_line(tmp_path: Path, classifier_gguf: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(classifier_gguf.read_bytes()[:3000])
    with pytest.raises(ModelError, match="could not load") as exc:
        open_reranker(broken)
    assert "\n" not in str(exc.value)


# ----------------------------------------------------------------------------- scoring


def test_pair_layout_is_cls_query_sep_document_sep(classifier) -> None:
    q = classifier.query_ids(QUERY)
    ids = classifier.pair_tokens(q, TEXTS[0])
    assert ids[0] == classifier._cls and ids[len(q) + 1] == classifier._sep
    assert ids[-1] == classifier._sep and ids[1:len(q) + 1] == q
    # The tokenizer's own special tokens around a text are the same [CLS] and [SEP].
    own = classifier._model.tokenize(QUERY, True)
    assert own[0] == classifier._cls and own[-1] == classifier._sep and own[1:-1] == q


def test_scores_are_deterministic_and_batched_equals_one_at_a_time(classifier,
                                                                  classifier_gguf) -> None:
    batched = classifier.score(QUERY, TEXTS)
    assert len(batched) == len(TEXTS) and len(set(batched)) == len(TEXTS)
    assert classifier.score(QUERY, TEXTS) == batched
    # One pair per decode or several: the same up to float rounding (llama.cpp's kernels
    # round differently with the batch's size, ~1e-3 of a logit here)...
    single = [classifier.score(QUERY, [t])[0] for t in TEXTS]
    assert single == pytest.approx(batched, abs=5e-3)
    # ...and no pair sees another: its neighbour in the batch changes nothing.
    beside = [classifier.score(QUERY, [TEXTS[0], t])[0] for t in TEXTS[1:5]]
    assert beside == pytest.approx([beside[0]] * 4, abs=1e-6)
    other = LlamaCppClassifier(classifier_gguf, n_threads=1)  # another instance, batch 512
    try:
        assert other.score(QUERY, TEXTS) == pytest.approx(batched, abs=5e-3)
    finally:
        other.close()
    # The score is the query's too, not only the document's.
    assert classifier.score("user account config", TEXTS[:2]) != batched[:2]
    assert classifier.score(QUERY, []) == []
    assert classifier.tokens_per_second() is not None


def test_scores_are_raw_logits_not_probabilities(classifier) -> None:
    scores = classifier.score(QUERY, TEXTS)
    assert any(s < 0 for s in scores)  # a sigmoid would be in (0, 1)


def test_pairs_are_cut_to_the_budget_query_first(classifier) -> None:
    long_doc = "def refresh ( token ) : return self . token\n" * 200
    long_query = " ".join(["where do we refresh expired tokens"] * 40)
    q = classifier.query_ids(long_query)
    assert len(q) == classifier.profile.query_tokens  # 64, before the document is cut
    ids = classifier.pair_tokens(q, long_doc)
    assert len(ids) == classifier.max_tokens and ids[-1] == classifier._sep
    # What lies beyond the budget is never read: changing it changes no score.
    (a, b) = classifier.score(QUERY, [long_doc, long_doc + "class user account"])
    assert a == b


def test_document_cap_and_progress_stop(classifier_gguf) -> None:
    r = LlamaCppClassifier(classifier_gguf, n_threads=1, max_doc_tokens=5,
                           batch_tokens=CONTEXT_LENGTH)
    try:
        q = r.query_ids(QUERY)
        assert len(r.pair_tokens(q, TEXTS[7])) == len(q) + 3 + 5
        calls = []
        stopped = r.score(QUERY, TEXTS * 8, progress=lambda done, total: calls.append(done)
                          or True)
        assert 0 < len(stopped) < len(TEXTS) * 8 and calls == [len(stopped)]
    finally:
        r.close()


def test_a_pooler_layer_changes_the_scores(bert_dir: Path, classifier) -> None:
    path = write_tiny_bert(bert_dir, TinyBert(pooler=True))
    r = open_reranker(path, n_threads=1)
    try:
        assert r.score(QUERY, TEXTS[:3]) != pytest.approx(classifier.score(QUERY, TEXTS[:3]))
    finally:
        r.close()


def test_the_factory_builds_the_classifier(classifier_gguf: Path, tmp_path: Path) -> None:
    settings = Settings.from_mapping({"reranker_model": str(classifier_gguf),
                                      "index_dir": str(tmp_path)})
    r = build_model("llama.cpp", ModelRequest(Role.RERANKER, str(classifier_gguf), settings))
    try:
        assert isinstance(r, LlamaCppClassifier)
        assert r.blend == RerankBlend()  # not built in: the default even share
    finally:
        r.close()


# ----------------------------------------------------------------------------- built in


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, classifier_gguf: Path):
    """A built-in reranker folder holding the tiny classifier; returns a function that
    writes its semcode.json."""
    folder = tmp_path / "semcode-code-rerank"
    folder.mkdir()
    shutil.copy(classifier_gguf, folder / builtin.RERANKER_FILE)
    for module in (builtin, hub, profiles):
        monkeypatch.setattr(module, "RERANKER_DIR", folder, raising=False)

    def write(meta: dict[str, object]) -> Path:
        (folder / builtin.META_FILE).write_text(json.dumps(meta))
        return folder

    write({"recipe": "classifier", "max_tokens": 96, "query_tokens": 16,
           "blend": {"weight": 0.7, "k": 5}})
    return write


def test_builtin_without_a_shipped_model_is_missing(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setattr(builtin, "RERANKER_DIR", tmp_path / "none")
    monkeypatch.setattr(hub, "RERANKER_DIR", tmp_path / "none")
    with pytest.raises(ModelMissing, match="ships no built-in reranker"):
        ModelSpec.parse("builtin", Role.RERANKER)
    assert ModelSpec.parse("off", Role.RERANKER).off
    fits, why = auto.builtin_rerank_fit(Settings())
    assert not fits and "ships no built-in reranker" in why


def test_builtin_loads_with_its_own_recipe_and_blend(shipped, tmp_path: Path) -> None:
    settings = Settings.from_mapping({"reranker_model": "builtin", "index_dir": str(tmp_path)})
    assert auto.backend_for(settings, Role.RERANKER)[0] == "llama.cpp"
    r = build_model("llama.cpp", ModelRequest(Role.RERANKER, "builtin", settings))
    try:
        assert isinstance(r, LlamaCppClassifier)
        assert r.max_tokens == 96 and r.profile.query_tokens == 16
        assert r.blend == RerankBlend(weight=0.7, k=5.0, fitted=True)
    finally:
        r.close()


def test_builtin_semcode_json_must_match_the_file(shipped, tmp_path: Path) -> None:
    settings = Settings.from_mapping({"reranker_model": "builtin", "index_dir": str(tmp_path)})
    shipped({"recipe": "yes-no"})
    with pytest.raises(ModelError, match="is a classifier reranker"):
        build_model("llama.cpp", ModelRequest(Role.RERANKER, "builtin", settings))
    shipped({"recipe": "listwise"})
    with pytest.raises(ModelError, match="unknown recipe 'listwise'"):
        build_model("llama.cpp", ModelRequest(Role.RERANKER, "builtin", settings))
    shipped({"recipe": "classifier", "blend": {"weight": "high"}})
    with pytest.raises(ModelError, match="'weight' must be a number"):
        build_model("llama.cpp", ModelRequest(Role.RERANKER, "builtin", settings))
    shipped({"recipe": "classifier", "blend": {"weight": 0.5, "method": "max"}})
    with pytest.raises(ModelError, match="unknown blend method 'max'"):
        build_model("llama.cpp", ModelRequest(Role.RERANKER, "builtin", settings))
    shipped({"recipe": "classifier", "blend": {"weight": 0.4, "method": "interpolate"}})
    r = build_model("llama.cpp", ModelRequest(Role.RERANKER, "builtin", settings))
    try:
        assert r.blend == RerankBlend(0.4, fitted=True, method=BlendMethod.INTERPOLATE)
    finally:
        r.close()


def test_builtin_never_fitted_has_weight_zero(shipped, tmp_path: Path) -> None:
    shipped({"recipe": "classifier"})
    settings = Settings.from_mapping({"reranker_model": "builtin", "index_dir": str(tmp_path)})
    r = build_model("llama.cpp", ModelRequest(Role.RERANKER, "builtin", settings))
    try:
        assert r.blend.weight == 0.0
    finally:
        r.close()


def test_auto_picks_the_builtin_only_when_20_fit_the_budget(shipped) -> None:
    # Recorded: 1000 pair tokens/s at 100 GFLOP/s, pairs of 100 tokens: 10 pairs/s there.
    shipped({"recipe": "classifier", "blend": {"weight": 0.6, "k": 10},
             "speed": {"tokens_per_s": 1000, "gflops": 100, "pair_tokens": 100}})
    four_s = Settings.from_mapping({"rerank_budget_ms": 4000})
    assert auto.builtin_rerank_fit(four_s, gflops=100) == (
        True, "the built-in reranker scores ~40 candidates in 4000 ms on this CPU "
              "(~1000 tokens/s)")
    fits, why = auto.builtin_rerank_fit(four_s, gflops=40)  # a slower CPU: 16 fit
    assert not fits and "~16 candidates" in why
    shipped({"recipe": "classifier", "blend": {"weight": 0.0, "k": 10},
             "speed": {"tokens_per_s": 1000, "gflops": 100, "pair_tokens": 100}})
    fits, why = auto.builtin_rerank_fit(four_s, gflops=100)
    assert not fits and "did not help" in why
    shipped({"recipe": "classifier", "blend": {"weight": 0.6}})
    fits, why = auto.builtin_rerank_fit(four_s, gflops=100)
    assert not fits and "no recorded speed" in why
