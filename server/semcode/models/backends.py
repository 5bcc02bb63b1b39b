"""Which backend runs a model, which model `auto` means on this machine, and the one
factory that builds every model.

**Backends.** `choose_backend()` turns the `backend` setting into (backend, reason) for
`semcode models`/`semcode status`. A static (model2vec) model always runs on the
`model2vec` backend (numpy; there is nothing to offload) unless `backend = "remote"`.
Otherwise `auto` picks, in order:
1. remote, when `remote_url` is set (the user pointed semcode at a server);
2. MLX, on Apple silicon (macOS arm64) when mlx-lm imports *and* the model setting names
   something MLX can load (a folder with config.json, or "hf:owner/repo" without a file);
   a GGUF stays on llama.cpp, which runs it on Metal anyway;
3. llama.cpp otherwise (CPU, Metal, or whatever GPU the wheel was built for).

**Models.** `embedding_model = "auto"` (the default) is Qwen3-Embedding-0.6B (GGUF) where
a GPU can run it — llama.cpp reports GPU offload (Metal, CUDA, Vulkan...) or MLX is
installed on Apple silicon — and the static code model `potion-code-16M-v2` on a CPU:
there a 0.6B transformer takes ~4 s per chunk (a day for a large repository), the static
model thousands of chunks per second. `reranker_model = "auto"` is Qwen3-Reranker-0.6B
where there is a GPU; on a CPU only when this machine can score `RERANK_MIN` documents
inside `rerank_budget_ms` (estimated from a quick measured matrix-multiply speed), and
off with one line saying why otherwise.

**Factory.** `build_model(backend, request)` is the one way a model is constructed; every
backend registers a typed factory with `register_backend()` (the built-in ones below).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from semcode.config import cache_dir, model_is_off

from .base import Embedder, ModelError, Reranker

BACKENDS = ("llama.cpp", "mlx", "remote", "model2vec")
Role = Literal["embedder", "reranker"]

AUTO = "auto"
GPU_EMBEDDING_MODEL = "hf:Qwen/Qwen3-Embedding-0.6B-GGUF/Qwen3-Embedding-0.6B-Q8_0.gguf"
GPU_RERANKER_MODEL = "hf:ggml-org/Qwen3-Reranker-0.6B-Q8_0-GGUF/qwen3-reranker-0.6b-q8_0.gguf"
CPU_EMBEDDING_MODEL = "hf:minishlab/potion-code-16M-v2"
RERANK_MIN_DOCS = 3  # keep equal to search.engine.RERANK_MIN (not imported: no upward import)

# Settings keys this module reads (getattr with these defaults, so that an older Settings
# without them still works).
REMOTE_DEFAULTS: dict[str, Any] = {
    "remote_url": "",
    "remote_reranker_url": "",  # "" -> remote_url
    "remote_embedding_model": "",
    "remote_reranker_model": "",
    "remote_api_key_env": "SEMCODE_REMOTE_API_KEY",
    "remote_timeout_s": 30.0,
    "remote_batch_size": 32,
}


def _setting(settings: Any, key: str) -> Any:
    return getattr(settings, key, REMOTE_DEFAULTS.get(key))


def is_apple_silicon(system: str | None = None, machine: str | None = None) -> bool:
    system = system or sys.platform
    machine = machine or platform.machine()
    return system == "darwin" and machine.lower() in ("arm64", "aarch64")


def is_static_spec(spec: str) -> bool:
    """Whether a model setting names a static (model2vec) model: a local folder in
    model2vec's format, or a hub repository ("hf:owner/repo", no file) that is one — by
    its cached config when it is cached, else by its name (minishlab/*, potion, model2vec)."""
    from .static import is_static_folder, looks_static_repo

    text = spec.strip()
    if model_is_off(text) or text.lower() == AUTO or text.lower().endswith(".gguf"):
        return False
    if text.startswith("hf:"):
        parts = [p for p in text[3:].split("/") if p]
        if len(parts) != 2:
            return False
        snapshot = _cached_snapshot("/".join(parts))
        if snapshot is not None and (snapshot / "config.json").is_file():
            return is_static_folder(snapshot)
        return looks_static_repo("/".join(parts))
    p = Path(os.path.expanduser(text))
    return p.is_dir() and is_static_folder(p)


def _cached_snapshot(repo_id: str) -> Path | None:
    """The newest cached snapshot folder of a hub model repository (no network)."""
    from huggingface_hub.constants import HF_HUB_CACHE

    snaps = Path(HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    try:
        found = [p for p in snaps.iterdir() if p.is_dir()]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def is_mlx_spec(spec: str) -> bool:
    """Whether a model setting names an MLX/HF checkpoint (not a GGUF, not static)."""
    text = spec.strip()
    if model_is_off(text) or text.lower() == AUTO or text.lower().endswith(".gguf"):
        return False
    if is_static_spec(text):
        return False
    if text.startswith("hf:"):
        return len([p for p in text[3:].split("/") if p]) == 2
    p = Path(os.path.expanduser(text))
    return p.is_dir() and (p / "config.json").is_file()


def choose_backend(requested: str, model_spec: str = "", remote_url: str = "",
                   system: str | None = None, machine: str | None = None
                   ) -> tuple[str, str]:
    """(backend, why) for one model setting. Never raises; an explicit choice is kept
    even when unusable (loading then fails with the reason)."""
    requested = (requested or "auto").strip()
    if is_static_spec(model_spec) and requested != "remote":
        return "model2vec", "a static (model2vec) model: numpy on the CPU, no runtime needed"
    if requested in BACKENDS:
        why = "set by the `backend` setting"
        if requested == "mlx":
            from .mlx import mlx_available

            missing = mlx_available()
            if missing:
                why += f" ({missing})"
        if requested == "remote" and not remote_url.strip():
            why += " (but `remote_url` is empty)"
        return requested, why
    if remote_url.strip():
        return "remote", "auto: `remote_url` is set"
    if is_apple_silicon(system, machine):
        if is_mlx_spec(model_spec):
            from .mlx import mlx_available

            missing = mlx_available()
            if missing is None:
                return "mlx", "auto: Apple silicon, mlx-lm installed, MLX-format model"
            return "llama.cpp", f"auto: MLX model but {missing}; llama.cpp (Metal)"
        return "llama.cpp", "auto: a GGUF model runs on llama.cpp (Metal on Apple silicon)"
    return "llama.cpp", "auto: llama.cpp (MLX is only chosen on Apple silicon)"


def backend_for(settings: Any, role: str) -> tuple[str, str]:
    """choose_backend() for a ModelSet role ("embedder", "query_embedder", "reranker"),
    with `auto` models resolved first."""
    spec, _ = model_for(settings, "reranker" if role == "reranker" else "embedder")
    return choose_backend(settings.backend, spec, _remote_url(settings, role))


def _remote_url(settings: Any, role: str) -> str:
    url = str(_setting(settings, "remote_url") or "")
    if role == "reranker":
        url = str(_setting(settings, "remote_reranker_url") or "") or url
    return url


# ============================================================== hardware and `auto`

@dataclass(frozen=True)
class Hardware:
    """What `auto` needs to know about this machine."""

    gpu: bool  # llama.cpp can offload to a GPU, or MLX runs on Apple silicon
    why: str  # one line: "CUDA via llama.cpp", "no GPU: llama.cpp reports no offload"...


_hardware: Hardware | None = None
_hardware_lock = threading.Lock()


def detect_hardware() -> Hardware:
    """Cheap and cached for the process: on Apple silicon, MLX (an installed mlx-lm, not
    imported) or llama.cpp's Metal; elsewhere llama.cpp's own answer
    (`llama_supports_gpu_offload()`: true for a CUDA/Vulkan/ROCm/SYCL build that found a
    device, false for a CPU build). SEMCODE_GPU=0/1 overrides the detection."""
    global _hardware
    with _hardware_lock:
        if _hardware is None:
            if _forced_gpu() is None:
                cached = _machine_cache().get("hardware")
                if isinstance(cached, list) and len(cached) == 2:
                    _hardware = Hardware(bool(cached[0]), str(cached[1]))
            if _hardware is None:
                _hardware = _detect()
                if _forced_gpu() is None:
                    _machine_cache_put("hardware", [_hardware.gpu, _hardware.why])
        return _hardware


def _forced_gpu() -> str | None:
    forced = os.environ.get("SEMCODE_GPU", "").strip().lower()
    return forced if forced in ("0", "1", "false", "true", "no", "yes") else None


# What detection and the matmul measurement found, kept for a day in the user cache
# (keyed by the llama.cpp build and the CPU count): every CLI call would otherwise pay
# ~0.3 s (importing llama.cpp's library, timing matmuls) to learn the same answer.
MACHINE_CACHE_S = 86400.0


def _machine_key() -> str:
    try:
        from importlib.metadata import version

        llama = version("llama_cpp_python")
    except Exception:  # noqa: BLE001 - not installed
        llama = "-"
    spec = importlib.util.find_spec("llama_cpp")
    where = spec.origin if spec is not None and spec.origin else "-"
    try:
        mtime = int(os.stat(where).st_mtime) if where != "-" else 0
    except OSError:
        mtime = 0
    return f"{platform.node()}|{os.cpu_count()}|{sys.executable}|{llama}|{where}|{mtime}"


def _machine_cache_path() -> Path:
    return cache_dir() / "machine.json"


def _machine_cache() -> dict[str, Any]:
    import json

    try:
        data = json.loads(_machine_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("key") != _machine_key():
        return {}
    if time.time() - float(data.get("time", 0)) > MACHINE_CACHE_S:
        return {}
    return data


def _machine_cache_put(name: str, value: Any) -> None:
    import json

    data = _machine_cache() or {"key": _machine_key(), "time": time.time()}
    data[name] = value
    path = _machine_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs the next process the measurement


def _detect() -> Hardware:
    forced = _forced_gpu()
    if forced is not None:
        on = forced in ("1", "true", "yes")
        return Hardware(on, f"SEMCODE_GPU={forced} says there is {'a' if on else 'no'} GPU")
    if is_apple_silicon():
        if importlib.util.find_spec("mlx_lm") is not None:
            return Hardware(True, "Apple silicon with MLX installed")
        return Hardware(True, "Apple silicon (llama.cpp runs on Metal)")
    if importlib.util.find_spec("llama_cpp") is None:
        return Hardware(False, "no GPU: llama-cpp-python is not installed")
    try:
        import llama_cpp

        offload = bool(llama_cpp.llama_supports_gpu_offload())
    except Exception as exc:  # noqa: BLE001 - a broken native build means no GPU for us
        return Hardware(False, f"no GPU: llama.cpp did not load ({type(exc).__name__})")
    if offload:
        return Hardware(True, "llama.cpp can offload to a GPU")
    return Hardware(False, "no GPU: this llama.cpp build runs on the CPU only")


# Throughput of the 0.6B Qwen3 models on the CPU, relative to a measured float32 matrix
# multiply: on the 2-core reference machine, quiet, numpy ran 512x512 matmuls at ~190
# GFLOP/s (best of 5) while llama.cpp's Q8_0 kernels processed ~80 prompt tokens/s for
# Qwen3-0.6B. (An earlier calibration, 11 GFLOP/s, was taken on a loaded machine and
# overestimated CPUs 17x.) A loaded machine measures slower, which errs towards "off".
_TOKENS_PER_GFLOP_0_6B = 80 / 190
_gflops: float | None = None


def cpu_gflops() -> float:
    """A quick measured float32 matmul speed of this machine (~50 ms, cached)."""
    global _gflops
    if _gflops is None:
        cached = _machine_cache().get("gflops")
        if isinstance(cached, int | float) and cached > 0:
            _gflops = float(cached)
            return _gflops
        import numpy as np

        rng = np.random.default_rng(0)
        a = rng.random((512, 512), dtype=np.float32)
        b = rng.random((512, 512), dtype=np.float32)
        a @ b  # warm up (thread pool, pages)
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        _gflops = 2 * 512**3 / max(best, 1e-9) / 1e9
        _machine_cache_put("gflops", _gflops)
    return _gflops


# Parameter counts of models semcode documents (for CPU cost estimates); keys are
# lower-case substrings of the model setting.
KNOWN_PARAMS: dict[str, float] = {
    "qwen3-embedding-0.6b": 0.6e9, "qwen3-reranker-0.6b": 0.6e9, "qwen3-embedding-4b": 4e9,
    "qwen3-embedding-8b": 8e9, "minilm-l6": 22e6, "minilm-l12": 33e6, "bge-small": 33e6,
    "bge-base": 110e6, "nomic-embed-text": 137e6, "nomic-embed-code": 7e9,
    "embeddinggemma": 0.3e9, "jina-embeddings-v2-base-code": 161e6,
}


def model_params(spec: str, path: Path | None = None) -> float | None:
    """Approximate parameter count: known names first, else a GGUF's size (≈1 byte per
    parameter at Q8_0)."""
    text = spec.lower().replace("_", "-")
    for key, params in KNOWN_PARAMS.items():
        if key in text:
            return params
    if path is not None and path.is_file() and path.suffix.lower() == ".gguf":
        return path.stat().st_size / 1.07
    return None


def cpu_tokens_per_second(params: float) -> float:
    """Estimated prompt-processing tokens/s of a transformer of `params` on this CPU."""
    return cpu_gflops() * _TOKENS_PER_GFLOP_0_6B * 0.6e9 / params


# What a reranker reads per document (the engine trims code to rerank_doc_tokens; code
# chunks average ~200 tokens) plus the shared prompt decoded once.
_RERANK_DOC_TOKENS = 200
_RERANK_PROMPT_TOKENS = 120


def rerank_fit(settings: Any, tokens_per_s: float | None = None) -> tuple[bool, str]:
    """Whether a CPU reranker scores RERANK_MIN documents inside `rerank_budget_ms`."""
    tps = tokens_per_s or cpu_tokens_per_second(0.6e9)
    per_doc = min(int(settings.rerank_doc_tokens), _RERANK_DOC_TOKENS) + 40
    need_s = (_RERANK_PROMPT_TOKENS + RERANK_MIN_DOCS * per_doc) / tps
    budget_s = settings.rerank_budget_ms / 1000
    text = (f"Qwen3-Reranker-0.6B would take ~{need_s:.1f} s for {RERANK_MIN_DOCS} documents "
            f"on this CPU (~{tps:.0f} tokens/s), budget {settings.rerank_budget_ms} ms")
    return (budget_s == 0 or need_s <= budget_s), text


def model_for(settings: Any, role: Role) -> tuple[str, str]:
    """(the model spec to load, why) for a role; "auto" resolved for this machine. An
    explicit setting is returned as is, with an empty reason."""
    raw = settings.reranker_model if role == "reranker" else settings.embedding_model
    if raw.strip().lower() != AUTO:
        return raw, ""
    if _remote_url(settings, role).strip() and settings.backend in ("auto", "remote"):
        spec = GPU_RERANKER_MODEL if role == "reranker" else GPU_EMBEDDING_MODEL
        return spec, "auto: a remote server runs the models"
    hw = detect_hardware()
    if role == "embedder":
        if hw.gpu:
            return GPU_EMBEDDING_MODEL, f"auto: {hw.why}: Qwen3-Embedding-0.6B"
        return CPU_EMBEDDING_MODEL, (f"auto: {hw.why}: the static code model "
                                     f"(a 0.6B transformer would take hours on a CPU)")
    if hw.gpu:
        return GPU_RERANKER_MODEL, f"auto: {hw.why}: Qwen3-Reranker-0.6B"
    fits, text = rerank_fit(settings)
    if fits:
        return GPU_RERANKER_MODEL, f"auto: {hw.why}, but {text}: reranking on"
    return "off", f"auto: {hw.why}; {text}; set reranker_model to rerank anyway"


# ============================================================== the factory

@dataclass(frozen=True)
class ModelRequest:
    """Everything a backend needs to build one model."""

    role: Role
    spec: str  # the model setting with "auto" resolved ("hf:...", a path, a repo)
    settings: Any  # semcode.config.Settings
    download: bool = True  # may fetch from the hub (False: the cache only)

    @property
    def offline(self) -> bool:
        return bool(getattr(self.settings, "offline_mode", False))


# A backend's builder: the request in, a loaded model out (or ModelError, one line).
BackendFactory = Callable[[ModelRequest], Embedder | Reranker]


_FACTORIES: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make `factory` the builder of models for backend `name`."""
    _FACTORIES[name] = factory


def build_model(backend: str, request: ModelRequest) -> Embedder | Reranker:
    """The Embedder/Reranker for `request` on `backend`. Raises ModelError (one line)."""
    factory = _FACTORIES.get(backend)
    if factory is None:
        raise ModelError(f"backend {backend!r} is not available "
                         f"(known: {', '.join(sorted(_FACTORIES))})")
    return factory(request)


def _explicit_profile(settings: Any) -> Any:
    from .profiles import get_embedding_profile

    name = getattr(settings, "embedding_profile", "auto")
    return None if name == "auto" else get_embedding_profile(name)


def _build_llama_cpp(req: ModelRequest) -> Embedder | Reranker:
    from . import llama_cpp
    from .registry import ModelSpec, resolve_model_file

    spec = ModelSpec.parse(req.spec)
    if spec.repo_id and not spec.filename:
        raise ModelError(f"model {req.spec}: llama.cpp needs a GGUF file "
                         f"(hf:OWNER/REPO/FILE.gguf)")
    path = resolve_model_file(spec, req.offline, req.download)
    s = req.settings
    if req.role == "reranker":
        return llama_cpp.LlamaCppReranker(path, n_threads=s.n_threads,
                                          n_gpu_layers=s.n_gpu_layers,
                                          max_doc_tokens=s.rerank_doc_tokens)
    return llama_cpp.LlamaCppEmbedder(path, profile=_explicit_profile(s),
                                      n_threads=s.n_threads, n_gpu_layers=s.n_gpu_layers,
                                      batch_tokens=s.embed_batch_tokens)


def _build_mlx(req: ModelRequest) -> Embedder | Reranker:
    from .mlx import MlxEmbedder, MlxReranker

    s = req.settings
    if req.role == "reranker":
        return MlxReranker(req.spec, offline=req.offline, max_doc_tokens=s.rerank_doc_tokens)
    return MlxEmbedder(req.spec, profile=_explicit_profile(s),
                       batch_tokens=s.embed_batch_tokens, offline=req.offline)


def remote_config(settings: Any, role: str) -> Any:
    from .remote import RemoteConfig

    model_key = "remote_reranker_model" if role == "reranker" else "remote_embedding_model"
    return RemoteConfig(
        base_url=_remote_url(settings, role),
        model=str(_setting(settings, model_key) or ""),
        api_key_env=str(_setting(settings, "remote_api_key_env") or ""),
        timeout_s=float(_setting(settings, "remote_timeout_s")),
        batch_size=int(_setting(settings, "remote_batch_size")),
    )


def _build_remote(req: ModelRequest) -> Embedder | Reranker:
    from .remote import RemoteEmbedder, RemoteReranker

    cfg = remote_config(req.settings, req.role)
    if req.role == "reranker":
        return RemoteReranker(cfg)
    return RemoteEmbedder(cfg, profile=_explicit_profile(req.settings))


def _build_model2vec(req: ModelRequest) -> Embedder | Reranker:
    from .registry import ModelSpec, resolve_model_folder
    from .static import StaticEmbedder

    if req.role == "reranker":
        raise ModelError(f"{req.spec} is a static embedding model, not a reranker")
    folder = resolve_model_folder(ModelSpec.parse(req.spec), req.offline, req.download)
    profile = _explicit_profile(req.settings)
    return StaticEmbedder(folder, profile=profile)


BUILTIN: dict[str, BackendFactory] = {
    "llama.cpp": _build_llama_cpp, "mlx": _build_mlx, "remote": _build_remote,
    "model2vec": _build_model2vec,
}
for _name, _factory in BUILTIN.items():
    register_backend(_name, _factory)


# ============================================================== what a choice costs

STATIC_CHUNKS_PER_S = 8000  # measured on the 2-core reference machine (one core busy)
_TOKENS_PER_CHUNK = 200  # a typical code chunk


def embedding_cost(settings: Any, spec: str, backend: str, path: Path | None,
                   chunks: int | None) -> str | None:
    """One line on what embedding `chunks` chunks will cost with this model here, or
    None where there is nothing useful to say (a GPU, a remote server, the model off).
    A static model that is on disk is measured; a transformer on the CPU is estimated
    from its size and this machine's measured matmul speed."""
    n = chunks if chunks else 1000
    what = f"the {chunks:,} chunks of this index" if chunks else "1,000 chunks"
    if backend == "model2vec":
        rate = _measure_static(path) if path is not None else None
        how = "measured" if rate else "typical"
        rate = rate or STATIC_CHUNKS_PER_S
        return f"~{rate:,.0f} chunks/s ({how}): {what} in ~{_duration(n / rate)}"
    if backend != "llama.cpp" or detect_hardware().gpu:
        return None
    params = model_params(spec, path)
    if params is None:
        return None
    tps = cpu_tokens_per_second(params)
    seconds = n * _TOKENS_PER_CHUNK / tps
    line = (f"on this CPU ~{tps / _TOKENS_PER_CHUNK:,.1f} chunks/s (estimated): {what} "
            f"in ~{_duration(seconds)}; lexical results work meanwhile")
    if seconds > 600:
        line += f"; embedding_model = \"auto\" uses {CPU_EMBEDDING_MODEL} here (seconds)"
    return line


def _measure_static(folder: Path) -> float | None:
    """Chunks/s of a static model on ~2,000 code-like texts (a fraction of a second)."""
    try:
        from .static import StaticEmbedder

        model = StaticEmbedder(folder)
    except ModelError:
        return None
    text = ("def load_settings(path, overrides=None):\n    \"\"\"Read the config file.\"\"\"\n"
            "    data = tomllib.loads(Path(path).read_text())\n    return Settings(**data)\n")
    docs = [f"{text}# {i}\n" * 3 for i in range(2000)]
    model.embed_documents(docs[:100])
    t = time.perf_counter()
    model.embed_documents(docs)
    return len(docs) / max(time.perf_counter() - t, 1e-6)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
