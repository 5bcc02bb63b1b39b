"""What this machine can do for a model: whether there is a GPU to offload to
(`detect_hardware`), how fast its CPU multiplies matrices (`cpu_gflops`) and so how many
tokens/s a transformer of a given size would process on it (`cpu_tokens_per_second`).

Separate from the choices made with the answers (`auto.py`, `costs.py`) because it is
the only part that measures or probes: it may import llama.cpp's library or time
matmuls, so it caches what it found, in the process and for a day in the user cache
(`machine.json`, keyed by the llama.cpp build and the CPU count).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semcode.config import cache_dir


def is_apple_silicon(system: str | None = None, machine: str | None = None) -> bool:
    """Whether this is (or `system`/`machine`, as sys.platform and platform.machine()
    spell them, describe) macOS on an ARM CPU."""
    system = system or sys.platform
    machine = machine or platform.machine()
    return system == "darwin" and machine.lower() in ("arm64", "aarch64")


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
    try:
        data = json.loads(_machine_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("key") != _machine_key():
        return {}
    if time.time() - float(data.get("time", 0)) > MACHINE_CACHE_S:
        return {}
    return data


def _machine_cache_put(name: str, value: object) -> None:
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


def cpu_tokens_per_second(params: float) -> float:
    """Estimated prompt-processing tokens/s of a transformer of `params` on this CPU."""
    return cpu_gflops() * _TOKENS_PER_GFLOP_0_6B * 0.6e9 / params
