"""What `auto` means on this machine: the model a role's setting resolves to
(`model_for`) and the backend that then runs it (`backend_for`).

`embedding_model = "auto"` (the default) is Qwen3-Embedding-0.6B (GGUF) where a GPU can
run it — llama.cpp reports GPU offload (Metal, CUDA, Vulkan...) or MLX is installed on
Apple silicon — and semcode's own static code model (`builtin`, shipped in the package,
no download) on a CPU: there a 0.6B transformer takes ~4 s per chunk (a day for a large
repository), the static model thousands of chunks per second. An installation without
the built-in model falls back to the hub's `potion-code-16M-v2`.
`reranker_model = "auto"` is Qwen3-Reranker-0.6B where there is a GPU. On a CPU it is
semcode's own code cross-encoder (`builtin`) when this installation ships one that helped
on the tune split (a fitted weight above 0) and at least `AUTO_RERANK_DEPTH` candidates
fit `rerank_budget_ms` at this machine's speed (`builtin_rerank_fit`: the speed recorded
in its `semcode.json`, scaled by this machine's measured matmul speed against the one it
was recorded at); else Qwen3-Reranker when this machine can score `RERANK_MIN_DOCS`
documents inside the budget (`rerank_fit`); else off, with one line saying why.

Separate from `backends.py` (which backend runs a given model, a pure function of the
settings) because this one depends on the machine (`machine.py`).
"""

from __future__ import annotations

from semcode.config import Settings
from semcode.kinds import Role
from semcode.models.backends import AUTO, choose_backend, remote_url
from semcode.models.base import ModelError
from semcode.models.builtin import BUILTIN, embedder_folder, is_builtin
from semcode.models.machine import cpu_gflops, cpu_tokens_per_second, detect_hardware
from semcode.models.profiles import builtin_reranker_recipe

GPU_EMBEDDING_MODEL = "hf:Qwen/Qwen3-Embedding-0.6B-GGUF/Qwen3-Embedding-0.6B-Q8_0.gguf"
GPU_RERANKER_MODEL = "hf:ggml-org/Qwen3-Reranker-0.6B-Q8_0-GGUF/qwen3-reranker-0.6b-q8_0.gguf"
HUB_CODE_EMBEDDING_MODEL = "hf:minishlab/potion-code-16M-v2"
RERANK_MIN_DOCS = 3  # keep equal to search.reranking.RERANK_MIN (not imported: no upward import)
# The built-in reranker is worth running on a CPU when this many candidates fit the budget
# (the first stage already has the answer in its top 10 for most questions, first for
# about half: reranking fewer than 20 leaves too little room to move it up).
AUTO_RERANK_DEPTH = 20

# What a reranker reads per document (the engine trims code to rerank_doc_tokens; code
# chunks average ~200 tokens) plus the shared prompt decoded once.
_RERANK_DOC_TOKENS = 200
_RERANK_PROMPT_TOKENS = 120


def rerank_fit(settings: Settings, tokens_per_s: float | None = None) -> tuple[bool, str]:
    """Whether a CPU reranker scores RERANK_MIN_DOCS documents inside `rerank_budget_ms`,
    and one line saying how long it would take."""
    tps = tokens_per_s or cpu_tokens_per_second(0.6e9)
    per_doc = min(int(settings.rerank_doc_tokens), _RERANK_DOC_TOKENS) + 40
    need_s = (_RERANK_PROMPT_TOKENS + RERANK_MIN_DOCS * per_doc) / tps
    budget_s = settings.rerank_budget_ms / 1000
    text = (f"Qwen3-Reranker-0.6B would take ~{need_s:.1f} s for {RERANK_MIN_DOCS} documents "
            f"on this CPU (~{tps:.0f} tokens/s), budget {settings.rerank_budget_ms} ms")
    return (budget_s == 0 or need_s <= budget_s), text


def builtin_rerank_fit(settings: Settings, gflops: float | None = None) -> tuple[bool, str]:
    """Whether `auto` picks the built-in reranker on this CPU: shipped, fitted with a
    weight above 0, and `AUTO_RERANK_DEPTH` pairs fit `rerank_budget_ms` at its recorded
    speed scaled to this machine's; one line saying why (not)."""
    try:
        shipped = builtin_reranker_recipe()
    except ModelError as exc:
        return False, f"the built-in reranker is unusable ({exc})"
    if shipped is None:
        return False, "this installation ships no built-in reranker"
    if shipped.blend is None or shipped.blend.weight <= 0:
        return False, "the built-in reranker did not help on the tune split (weight 0)"
    if not (shipped.tokens_per_s and shipped.gflops):
        return False, "the built-in reranker has no recorded speed"
    tps = shipped.tokens_per_s * (gflops or cpu_gflops()) / shipped.gflops
    pair = shipped.pair_tokens or shipped.profile.max_tokens
    budget_s = settings.rerank_budget_ms / 1000
    depth = int(tps * budget_s / pair) if budget_s else settings.rerank_depth
    text = (f"the built-in reranker scores ~{depth} candidates in {settings.rerank_budget_ms} ms "
            f"on this CPU (~{tps:.0f} tokens/s)")
    return depth >= AUTO_RERANK_DEPTH, text


def cpu_embedding_model() -> str:
    """What `auto` embeds with on a CPU: the built-in model, else the hub's code model."""
    return BUILTIN if embedder_folder() is not None else HUB_CODE_EMBEDDING_MODEL


def model_for(settings: Settings, role: Role) -> tuple[str, str]:
    """(the model spec to load, why) for a role; "auto" resolved for this machine. An
    explicit setting is returned as is, with an empty reason."""
    raw = settings.reranker_model if role == Role.RERANKER else settings.embedding_model
    if raw.strip().lower() != AUTO:
        return raw, ""
    if remote_url(settings, role).strip() and settings.backend in ("auto", "remote"):
        spec = GPU_RERANKER_MODEL if role == Role.RERANKER else GPU_EMBEDDING_MODEL
        return spec, "auto: a remote server runs the models"
    hw = detect_hardware()
    if role == Role.EMBEDDER:
        if hw.gpu:
            return GPU_EMBEDDING_MODEL, f"auto: {hw.why}: Qwen3-Embedding-0.6B"
        return cpu_embedding_model(), (f"auto: {hw.why}: the static code model "
                                       f"(a 0.6B transformer would take hours on a CPU)")
    if hw.gpu:
        return GPU_RERANKER_MODEL, f"auto: {hw.why}: Qwen3-Reranker-0.6B"
    fits, own = builtin_rerank_fit(settings)
    if fits:
        return BUILTIN, f"auto: {hw.why}: {own}"
    fits, text = rerank_fit(settings)
    if fits:
        return GPU_RERANKER_MODEL, f"auto: {hw.why}, but {text}: reranking on"
    return "off", f"auto: {hw.why}; {own}; {text}; set reranker_model to rerank anyway"


def backend_for(settings: Settings, role: str) -> tuple[str, str]:
    """choose_backend() for a ModelSet slot (Role.EMBEDDER, the query embedder's slot,
    Role.RERANKER), with `auto` models resolved first."""
    spec, _ = model_for(settings, Role.RERANKER if role == Role.RERANKER else Role.EMBEDDER)
    if role == Role.RERANKER and is_builtin(spec) and settings.backend in ("auto", "llama.cpp"):
        return "llama.cpp", "the built-in reranker: a GGUF on llama.cpp"
    return choose_backend(settings.backend, spec, remote_url(settings, role))
