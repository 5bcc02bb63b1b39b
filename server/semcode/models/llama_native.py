"""llama.cpp through llama-cpp-python's low-level ctypes API: loading a GGUF, the log
hook, the AMX probe, a file's content identity, contexts, batches and decoding.

`llama_cpp.py` builds the embedder and the reranker on these. Nothing here knows about
embeddings or reranking; nothing here is imported before a model is loaded (importing
semcode must not load native code).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
from collections import deque
from pathlib import Path
from types import ModuleType

from .base import ModelError, ModelMissing
from .profiles import classifier_labels_key

# llama.cpp's enum llama_pooling_type.
_POOLING_IDS = {"none": 0, "mean": 1, "cls": 2, "last": 3, "rank": 4}

# The address of a native llama.cpp object (llama_model*, llama_context*): the low-level
# API declares them c_void_p, which ctypes hands back as a plain int (0 or None: NULL).
NativePointer = int


def load_library() -> ModuleType:
    """Import llama_cpp lazily: importing semcode must not load native code, and a missing
    wheel must surface as a ModelError, not an ImportError at import time."""
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ModelError(f"llama-cpp-python is not installed ({e})") from None
    _install_log_handler(llama_cpp)
    return llama_cpp


# --------------------------------------------------------------------------- logging

# llama.cpp logs every tensor it loads to stderr; an LSP server's stderr is the client's
# log pane. One process-wide callback drops the chatter unless some instance asked for
# verbose output, and keeps the last error lines to explain a failed load.
_log_lock = threading.Lock()
_log_installed = False
_log_verbose = False
_log_errors: deque[str] = deque(maxlen=8)
_log_callback: object = None  # keep a reference: ctypes callbacks die with their Python object


def _install_log_handler(llama_cpp: ModuleType) -> None:
    global _log_installed, _log_callback
    with _log_lock:
        if _log_installed:
            return

        def on_log(level: int, text: bytes, _user_data: object) -> None:
            """llama.cpp's log callback: keep error lines (they explain a failed load), print
            everything else only when verbose."""
            msg = text.decode("utf-8", "replace") if text else ""
            if level == 3 and msg.strip():  # GGML_LOG_LEVEL_ERROR
                _log_errors.append(msg.strip())
            if _log_verbose:
                sys.stderr.write(msg)

        _log_callback = llama_cpp.llama_log_callback(on_log)
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _log_installed = True


def _last_error() -> str:
    return f": {_log_errors[-1]}" if _log_errors else ""


def _extra_buffers_allowed() -> bool:
    """Whether llama.cpp may use its "extra" CPU buffer types (AMX, weight repacking).

    On a CPU that advertises AMX, ggml routes quantized matmuls (Q4_K, Q8_0, ...) to AMX
    tile instructions; in at least one VM (Linux 6.18 under Firecracker, where the kernel
    grants the AMX permission) `tileloadd` raises SIGILL and kills the whole process.
    Losing the repack speed-up is better than a crash, so extra buffers are off on AMX
    hosts unless SEMCODE_LLAMA_EXTRA_BUFTS=1 says they work there (=0 forces them off)."""
    env = os.environ.get("SEMCODE_LLAMA_EXTRA_BUFTS")
    if env is not None:
        return env.strip() not in ("", "0", "false", "no")
    if sys.platform != "linux":
        return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" not in line.split()
    except OSError:
        pass
    return True


# --------------------------------------------------------------------------- identity

_identity_cache: dict[tuple[str, int, int], str] = {}
_HEAD_BYTES = 4 << 20  # header, metadata, tensor infos (and the first weights)
_SAMPLE_BYTES = 64 << 10
_SAMPLES = 16


def file_identity(path: str | os.PathLike[str]) -> str:
    """A content fingerprint of a model file, cheap enough for every start.

    Hashing all of a 600 MB GGUF takes seconds; the header plus 16 evenly spaced 64 KiB
    samples of the weights plus the size (about 5 MB read) tells apart any two files
    that differ in shape, metadata or weights, while a renamed or moved copy keeps its
    id. Cached by (path, size, mtime)."""
    p = os.path.realpath(path)
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns)
    cached = _identity_cache.get(key)
    if cached:
        return cached
    h = hashlib.sha256()
    h.update(str(st.st_size).encode())
    with open(p, "rb") as f:
        h.update(f.read(_HEAD_BYTES))
        if st.st_size > _HEAD_BYTES:
            step = (st.st_size - _HEAD_BYTES) // _SAMPLES
            for i in range(_SAMPLES):
                f.seek(_HEAD_BYTES + i * step)
                h.update(f.read(_SAMPLE_BYTES))
    digest = h.hexdigest()
    _identity_cache[key] = digest
    return digest


# --------------------------------------------------------------------------- model


class LlamaModel:
    """A loaded GGUF: weights, vocabulary, metadata. Shared code of both roles."""

    def __init__(self, path: str | os.PathLike[str], n_gpu_layers: int, verbose: bool) -> None:
        global _log_verbose
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelMissing(f"model file not found: {self.path}")
        try:
            with open(self.path, "rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise ModelError(f"cannot read model file {self.path}: {e.strerror}") from None
        if magic != b"GGUF":
            raise ModelError(f"not a GGUF model file: {self.path}")

        self.lib = load_library()
        if verbose:
            _log_verbose = True
        self.n_gpu_layers = n_gpu_layers
        params = self.lib.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.use_extra_bufts = _extra_buffers_allowed()
        _log_errors.clear()
        self.ptr = self.lib.llama_model_load_from_file(str(self.path).encode(), params)
        if not self.ptr:
            raise ModelError(f"llama.cpp could not load {self.path}{_last_error()}")
        self.vocab = self.lib.llama_model_get_vocab(self.ptr)
        self.metadata = self._read_metadata()
        self.arch = self.metadata.get("general.architecture", "")
        self.n_embd = int(self.lib.llama_model_n_embd(self.ptr))
        self.n_ctx_train = int(self.lib.llama_model_n_ctx_train(self.ptr))
        self.n_vocab = int(self.lib.llama_vocab_n_tokens(self.vocab))
        self.eos = int(self.lib.llama_vocab_eos(self.vocab))
        self.sep = int(self.lib.llama_vocab_sep(self.vocab))
        self.identity = file_identity(self.path)

    def _read_metadata(self) -> dict[str, str]:
        lib, out = self.lib, {}
        buf = ctypes.create_string_buffer(1 << 16)
        for i in range(int(lib.llama_model_meta_count(self.ptr))):
            n = lib.llama_model_meta_key_by_index(self.ptr, i, buf, len(buf))
            if n < 0:
                continue
            key = buf.value.decode("utf-8", "replace")
            n = lib.llama_model_meta_val_str_by_index(self.ptr, i, buf, len(buf))
            if n < 0:
                continue
            out[key] = buf.value.decode("utf-8", "replace")
        # Array values are not readable as strings through the C API; the classifier's
        # labels (what tells a converted sequence classifier apart) are asked one by one.
        labels = []
        for i in range(int(lib.llama_model_n_cls_out(self.ptr))):
            label = lib.llama_model_cls_label(self.ptr, i)
            if not label:
                break
            labels.append(label.decode("utf-8", "replace"))
        if labels:
            arch = out.get("general.architecture", "")
            out[classifier_labels_key(arch)] = ",".join(labels)
        return out

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        """Token ids of `text` in this model's vocabulary; `add_special` adds the tokenizer's
        own BOS/EOS."""
        # parse_special=True: control tokens written in a template (<|im_start|>...)
        # become their ids, as HF tokenizers do; with False they would be split into
        # bytes and the model would see a different prompt.
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ctypes.c_int32 * cap)()
        n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        if n < 0:  # buffer too small: -n is the size needed
            cap = -n
            buf = (ctypes.c_int32 * cap)()
            n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        return list(buf[:n])

    @property
    def device(self) -> str:
        """Where the layers run: "cpu", or "metal"/"gpu" when layers are offloaded and this
        llama.cpp build can offload."""
        offload = self.n_gpu_layers != 0 and bool(self.lib.llama_supports_gpu_offload())
        if not offload:
            return "cpu"
        return "metal" if sys.platform == "darwin" else "gpu"

    def new_context(
        self,
        *,
        n_ctx: int,
        n_batch: int,
        n_seq_max: int,
        n_threads: int,
        embeddings: bool,
        pooling: str,
    ) -> NativePointer:
        """A new llama.cpp context on this model (the caller frees it with `llama_free`): one KV
        cache unified across `n_seq_max` sequences, micro-batch = batch (pooled embeddings need each
        sequence whole in one), `pooling` one of none/mean/cls/last/rank. Raises ModelError with
        llama.cpp's last error line."""
        p = self.lib.llama_context_default_params()
        p.n_ctx = n_ctx
        p.n_batch = n_batch
        # Pooled embeddings need each sequence whole inside one micro-batch.
        p.n_ubatch = n_batch
        p.n_seq_max = n_seq_max
        threads = n_threads if n_threads > 0 else max(1, os.cpu_count() or 1)
        p.n_threads = threads
        p.n_threads_batch = threads
        p.embeddings = embeddings
        p.pooling_type = _POOLING_IDS[pooling]
        # One KV buffer for all sequences: a copied prefix is shared, not duplicated, and
        # any mix of sequence lengths fits as long as the total does.
        p.kv_unified = True
        p.no_perf = True
        _log_errors.clear()
        ctx = self.lib.llama_init_from_model(self.ptr, p)
        if not ctx:
            raise ModelError(f"llama.cpp could not create a context for {self.path}{_last_error()}")
        return ctx

    def free(self) -> None:
        """Free the native model (idempotent)."""
        if self.ptr:
            self.lib.llama_model_free(self.ptr)
            self.ptr = None


class Batch:
    """A llama_batch we fill token by token; one sequence id per token."""

    def __init__(self, lib: ModuleType, capacity: int) -> None:
        self.lib = lib
        self.capacity = capacity
        self.raw = lib.llama_batch_init(capacity, 0, 1)
        self.n = 0

    def clear(self) -> None:
        """Empty the batch for the next decode (the native buffers are reused)."""
        self.n = 0
        self.raw.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, output: bool) -> int:
        """Append one token at position `pos` of sequence `seq`; `output` asks for its
        logits/embedding. Returns its index in the batch (what `llama_get_logits_ith` takes)."""
        i = self.n
        if i >= self.capacity:
            raise RuntimeError("llama batch overflow")  # a packing bug, not a user error
        b = self.raw
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = output
        self.n += 1
        b.n_tokens = self.n
        return i

    def free(self) -> None:
        """Free the native batch (idempotent)."""
        if self.raw is not None:
            self.lib.llama_batch_free(self.raw)
            self.raw = None


def decode(model: LlamaModel, ctx: NativePointer, batch: Batch) -> None:
    """Run the model over `batch` in `ctx`; a non-zero return is a ModelError with llama.cpp's last
    error line."""
    rc = model.lib.llama_decode(ctx, batch.raw)
    if rc != 0:
        raise ModelError(f"llama_decode failed ({rc}) on {model.path.name}{_last_error()}")
