"""Known model recipes ("profiles") and how a GGUF file is matched to one.

A profile says how a model wants its inputs (query/document templates, pooling, EOS) and,
for rerankers, the prompt whose "yes"/"no" logits give the score. The recipe belongs to
the model, so every backend (llama.cpp, MLX, remote) reads it from here.

Reranker prompts are stored in `RerankerProfile.extra` (keys below) so that the base
dataclass stays backend-neutral; `reranker_template()` returns them with the Qwen3
defaults filled in. A prompt is cut in three parts so the backend can decode the
query-dependent prefix once and reuse its KV cache for every document:

    prefix (ends with "<Document>:")  +  document (" {doc}", leading space)  +  suffix

The split sits *before* the space after "<Document>:": with BPE the space belongs to the
first word of the document (" def"), so splitting after it would tokenise differently
from the full prompt and shift the score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeVar, overload

from semcode.kinds import BlendMethod, RerankRecipe, Role

from .base import EmbeddingProfile, ModelError, RerankBlend, RerankerProfile
from .builtin import RERANKER_DIR, reranker_meta

# --------------------------------------------------------------------------- embedders

QWEN3_EMBEDDING = EmbeddingProfile(
    name="qwen3-embedding",
    # No space after "Query:" (the official recipe); documents verbatim.
    query_template="Instruct: {task}\nQuery:{query}",
    document_template="{text}",
    pooling="last",
    append_eos=True,
    normalize=True,
    max_tokens=512,
)

# Encoder models (BERT family) get their [CLS]/[SEP] from the tokenizer itself
# (add_bos/add_eos in the GGUF), so no EOS is appended by hand.
GENERIC_MEAN = EmbeddingProfile(name="generic-mean", pooling="mean", append_eos=False)
GENERIC_CLS = EmbeddingProfile(name="generic-cls", pooling="cls", append_eos=False)
# Decoder models pooled on the last token read it from an EOS that must be there.
GENERIC_LAST = EmbeddingProfile(name="generic-last", pooling="last", append_eos=True)

NOMIC_EMBED_TEXT = EmbeddingProfile(
    name="nomic-embed-text",
    query_template="search_query: {query}",
    document_template="search_document: {text}",
    pooling="mean",
    append_eos=False,
)

NOMIC_EMBED_CODE = EmbeddingProfile(
    name="nomic-embed-code",
    query_template="Represent this query for searching relevant code: {query}",
    pooling="last",
    append_eos=True,
)

BGE = EmbeddingProfile(
    name="bge",
    # BGE v1.5's retrieval instruction; passages get none.
    query_template="Represent this sentence for searching relevant passages: {query}",
    pooling="cls",
    append_eos=False,
)

JINA_CODE = EmbeddingProfile(name="jina-code", pooling="mean", append_eos=False)

EMBEDDING_GEMMA = EmbeddingProfile(
    name="embeddinggemma",
    query_template="task: code retrieval | query: {query}",
    document_template="title: none | text: {text}",
    pooling="mean",
    append_eos=False,
)

# Static (model2vec) models: a table lookup and a mean (models/static.py); no instruction
# and no special tokens, queries and documents alike. `static-mean` gives the model the
# text as it is (what a model trained on raw code, such as potion-code, saw in training);
# `static-code-words` first splits code into words (`semcode.words.code_words`:
# parseHttpHeaders -> parse http headers, punctuation dropped) and gives a symbol's header
# line ("function name") twice: a model distilled from a text model knows words, not
# identifiers, and its lowercasing WordPiece turns `parseHttpHeaders` into `par ##se ##ht
# ##tp ##head ##ers`. Queries go through the same splitting.
STATIC_MEAN = EmbeddingProfile(name="static-mean", pooling="mean", append_eos=False,
                               normalize=True, max_tokens=512)
STATIC_CODE_WORDS = EmbeddingProfile(name="static-code-words", pooling="mean",
                                     append_eos=False, normalize=True, max_tokens=512)

EMBEDDING_PROFILES: dict[str, EmbeddingProfile] = {
    p.name: p
    for p in (
        QWEN3_EMBEDDING,
        GENERIC_MEAN,
        GENERIC_CLS,
        GENERIC_LAST,
        NOMIC_EMBED_TEXT,
        NOMIC_EMBED_CODE,
        BGE,
        JINA_CODE,
        EMBEDDING_GEMMA,
        STATIC_MEAN,
        STATIC_CODE_WORDS,
    )
}

# llama.cpp's enum llama_pooling_type, as stored under "{arch}.pooling_type".
_P = TypeVar("_P", EmbeddingProfile, RerankerProfile)
_POOLING_BY_ID = {0: "none", 1: "mean", 2: "cls", 3: "last", 4: "rank"}


def gguf_pooling(metadata: Mapping[str, object]) -> str | None:
    """The pooling named in GGUF metadata ("mean", "last", ...), or None if absent.

    Accepts values as llama-cpp-python's `Llama.metadata` gives them (strings) or as the
    `gguf` reader gives them (ints)."""
    arch = str(metadata.get("general.architecture", ""))
    raw = metadata.get(f"{arch}.pooling_type")
    if raw is None:
        return None
    try:
        # A string, an int or a NumPy integer, depending on the reader: int() takes each.
        return _POOLING_BY_ID.get(int(raw))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _named_profile(table: Mapping[str, _P], name: str, what: str) -> _P:
    """`table[name]`, or a ModelError that lists the known names."""
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise ModelError(f"unknown {what} profile {name!r} (known: {known})") from None


def get_embedding_profile(name: str) -> EmbeddingProfile:
    """The embedding profile called `name` (the `embedding_profile` setting)."""
    return _named_profile(EMBEDDING_PROFILES, name, "embedding")


def detect_embedding_profile(gguf_metadata: Mapping[str, object], file_name: str
                             ) -> EmbeddingProfile:
    """Pick the recipe for an embedding GGUF from its metadata and file name.

    Known families are matched by name; anything else gets a generic profile with the
    pooling the file declares (mean when it declares none: a safe default for encoders).
    """
    arch = str(gguf_metadata.get("general.architecture", "")).lower()
    names = (gguf_metadata.get("general.name"), gguf_metadata.get("general.basename"), file_name)
    label = " ".join(str(n) for n in names if n).lower().replace("_", "-")
    pooling = gguf_pooling(gguf_metadata)

    if ("qwen3" in arch or "qwen3" in label) and pooling in (None, "last"):
        # Qwen3-Embedding GGUFs declare LAST pooling; older conversions declare nothing.
        return QWEN3_EMBEDDING
    if "nomic" in label:
        if "code" in label:
            return NOMIC_EMBED_CODE
        return NOMIC_EMBED_TEXT
    if "embeddinggemma" in label or "gemma-embedding" in arch or "gemma-embedding" in label:
        return EMBEDDING_GEMMA
    if "bge" in label:
        return BGE if pooling in (None, "cls") else _with_pooling(BGE, pooling)
    if "jina" in label:
        return JINA_CODE if pooling in (None, "mean") else _with_pooling(JINA_CODE, pooling)
    if pooling == "last":
        return GENERIC_LAST
    if pooling == "cls":
        return GENERIC_CLS
    return GENERIC_MEAN


def _with_pooling(profile: EmbeddingProfile, pooling: str) -> EmbeddingProfile:
    from dataclasses import replace

    return replace(profile, pooling=pooling, append_eos=pooling == "last")


# --------------------------------------------------------------------------- rerankers

# Keys of RerankerProfile.extra that carry the prompt.
PREFIX = "prefix"  # format string with {instruction} and {query}; ends where the doc starts
DOCUMENT = "document"  # format string with {doc}; its leading space belongs to the document
SUFFIX = "suffix"  # after the document: closes the user turn, opens the answer
YES = "yes"  # the answer words whose logits are compared (each must be one token)
NO = "no"

_QWEN3_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".'
)

# The official Qwen3-Reranker template (works with every Qwen3-Reranker GGUF).
QWEN3_RERANKER_TEMPLATE: dict[str, str] = {
    PREFIX: (
        f"<|im_start|>system\n{_QWEN3_SYSTEM}<|im_end|>\n<|im_start|>user\n"
        "<Instruct>: {instruction}\n<Query>: {query}\n<Document>:"
    ),
    DOCUMENT: " {doc}",
    SUFFIX: "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    YES: "yes",
    NO: "no",
}

# The same question asked through Gemma's chat turns. Gemma is not trained as a reranker:
# this exists so that a small general model can exercise the yes/no scoring path.
GEMMA_YES_NO_TEMPLATE: dict[str, str] = {
    PREFIX: (
        f"<start_of_turn>user\n{_QWEN3_SYSTEM}\n"
        "<Instruct>: {instruction}\n<Query>: {query}\n<Document>:"
    ),
    DOCUMENT: " {doc}",
    SUFFIX: "<end_of_turn>\n<start_of_turn>model\n",
    YES: "yes",
    NO: "no",
}

QWEN3_RERANKER = RerankerProfile(name="qwen3-reranker", extra=QWEN3_RERANKER_TEMPLATE)
GEMMA_YES_NO = RerankerProfile(name="gemma-yes-no", extra=GEMMA_YES_NO_TEMPLATE)
# A BERT-style cross-encoder (BertForSequenceClassification with one output, converted by
# llama.cpp): `[CLS] query [SEP] document [SEP]`, token type 0 everywhere (llama.cpp's
# BERT graph adds type row 0 to every token), rank pooling, the raw logit as the score.
# Pairs of 256 tokens: code chunks average ~200, and attention grows with the square.
BERT_CLASSIFIER = RerankerProfile(name="bert-classifier", recipe=RerankRecipe.CLASSIFIER,
                                  query_tokens=64, max_tokens=256)

RERANKER_PROFILES: dict[str, RerankerProfile] = {
    p.name: p for p in (QWEN3_RERANKER, GEMMA_YES_NO, BERT_CLASSIFIER)}

# llama.cpp's encoder architectures (bidirectional attention; a classifier head, if any,
# read through rank pooling). Every other architecture is a decoder, asked yes or no.
ENCODER_ARCHITECTURES = frozenset({
    "bert", "modern-bert", "nomic-bert", "nomic-bert-moe", "neo-bert", "jina-bert-v2",
    "jina-bert-v3", "t5encoder",
})
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"


@dataclass(frozen=True)
class RerankTemplate:
    """A yes/no reranker's prompt in parts: `prefix` (filled with the instruction and the
    query; shared by every document, so its KV cache can be reused), `document` (filled
    with the document), `suffix` (opens the answer), and the two answer words whose
    logits are compared."""

    prefix: str
    document: str
    suffix: str
    yes: str
    no: str

    def format_prefix(self, instruction: str, query: str) -> str:
        """The prompt up to the document, for this instruction and query."""
        return self.prefix.format(instruction=instruction, query=query)

    def format_document(self, doc: str) -> str:
        """The document's part of the prompt (between the prefix and the suffix)."""
        return self.document.format(doc=doc)


def reranker_template(profile: RerankerProfile) -> RerankTemplate:
    """The prompt parts of a reranker profile; missing keys default to Qwen3's."""
    t = {**QWEN3_RERANKER_TEMPLATE, **profile.extra}
    return RerankTemplate(t[PREFIX], t[DOCUMENT], t[SUFFIX], t[YES], t[NO])


def get_reranker_profile(name: str) -> RerankerProfile:
    """The reranker profile called `name`."""
    return _named_profile(RERANKER_PROFILES, name, Role.RERANKER)


def classifier_labels_key(arch: str) -> str:
    """The GGUF key listing a classification head's output labels (llama.cpp's converter
    writes it for `...ForSequenceClassification`; their count is the head's outputs)."""
    return f"{arch}.classifier.output_labels"


def reranker_recipe(gguf_metadata: Mapping[str, object], file_name: str) -> RerankRecipe:
    """Which recipe a reranker GGUF needs, from its metadata, never from its name: an
    encoder with a classification head (pooling RANK, or the converter's classifier
    labels) and no chat template is a classifier; a decoder is asked yes or no. An encoder
    without a head (an embedding model) is no reranker: a ModelError saying so."""
    arch = str(gguf_metadata.get("general.architecture", "")).lower()
    pooling = gguf_pooling(gguf_metadata)
    chat = CHAT_TEMPLATE_KEY in gguf_metadata
    encoder = arch in ENCODER_ARCHITECTURES or \
        str(gguf_metadata.get(f"{arch}.attention.causal", "")).lower() == "false"
    head = pooling == "rank" or classifier_labels_key(arch) in gguf_metadata
    if not encoder:
        return RerankRecipe.YES_NO
    if not head:
        raise ModelError(f"{file_name}: an encoder ({arch}) without a classification head "
                         f"(pooling {pooling or 'not declared'}) is not a reranker")
    if chat:
        raise ModelError(f"{file_name}: an encoder ({arch}) with a classification head and "
                         f"a chat template: neither recipe is known to fit it")
    return RerankRecipe.CLASSIFIER


def detect_reranker_profile(gguf_metadata: Mapping[str, object], file_name: str
                            ) -> RerankerProfile:
    """The recipe's profile: a classifier gets `BERT_CLASSIFIER`; a yes/no model the
    official Qwen3 template (any ChatML model), Gemma its own turns."""
    if reranker_recipe(gguf_metadata, file_name) == RerankRecipe.CLASSIFIER:
        return BERT_CLASSIFIER
    arch = str(gguf_metadata.get("general.architecture", "")).lower()
    if arch.startswith("gemma"):
        return GEMMA_YES_NO
    return QWEN3_RERANKER



# --------------------------------------------------------------------------- built-in


@dataclass(frozen=True)
class ShippedReranker:
    """What the built-in reranker's `semcode.json` says (models/builtin.py has its
    schema): its profile (recipe and budgets), how its order is combined with the first
    stage's (None: never fitted), and its recorded speed (None: never measured)."""

    profile: RerankerProfile
    blend: RerankBlend | None
    tokens_per_s: float | None = None  # pair tokens/s where it was measured...
    gflops: float | None = None  # ...at this measured matmul speed (machine.cpu_gflops)
    pair_tokens: float | None = None  # the mean pair length of that measurement


def builtin_reranker_recipe() -> ShippedReranker | None:
    """The built-in reranker's recipe from its `semcode.json`, or None when this
    installation ships none. A file that names an unknown recipe or carries values of the
    wrong type is a ModelError naming the key."""
    meta = reranker_meta()
    if not meta:
        return None
    where = RERANKER_DIR / "semcode.json"
    try:
        recipe = RerankRecipe(str(meta.get("recipe", RerankRecipe.CLASSIFIER)))
    except ValueError:
        raise ModelError(f"{where}: unknown recipe {meta.get('recipe')!r} (known: "
                         f"{', '.join(RerankRecipe)})") from None
    base = BERT_CLASSIFIER if recipe == RerankRecipe.CLASSIFIER else QWEN3_RERANKER
    profile = replace(base, name="semcode-code-rerank",
                      max_tokens=int(_number(meta, "max_tokens", base.max_tokens, where)),
                      query_tokens=int(_number(meta, "query_tokens", base.query_tokens, where)))
    blend = None
    fit = meta.get("blend")
    if isinstance(fit, dict):
        try:
            method = BlendMethod(str(fit.get("method", BlendMethod.RRF)))
        except ValueError:
            raise ModelError(f"{where}: unknown blend method {fit.get('method')!r} (known: "
                             f"{', '.join(BlendMethod)})") from None
        blend = RerankBlend(weight=min(1.0, _number(fit, "weight", 0.0, where)),
                            k=_number(fit, "k", RerankBlend.k, where), fitted=True,
                            method=method)
    speed = meta.get("speed") if isinstance(meta.get("speed"), dict) else {}
    assert isinstance(speed, dict)
    return ShippedReranker(profile, blend,
                           tokens_per_s=_number(speed, "tokens_per_s", None, where),
                           gflops=_number(speed, "gflops", None, where),
                           pair_tokens=_number(speed, "pair_tokens", None, where))


@overload
def _number(data: Mapping[str, object], key: str, default: float, where: object) -> float: ...
@overload
def _number(data: Mapping[str, object], key: str, default: None, where: object
            ) -> float | None: ...
def _number(data: Mapping[str, object], key: str, default: float | None, where: object
            ) -> float | None:
    """A number of a `semcode.json`, `default` when absent; a ModelError when it is not
    a positive-or-zero number."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ModelError(f"{where}: {key!r} must be a number >= 0, got {value!r}")
    return float(value)
