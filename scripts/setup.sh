#!/usr/bin/env bash
# Create .venv and install semcode (editable) with its dependencies.
#
#   scripts/setup.sh          the tool
#   scripts/setup.sh --dev    plus test tools and test models (what scripts/test-all.sh needs)
#                             and the training extra (torch, transformers: training/)
#
# llama-cpp-python ships only as source and compiles for ~20 minutes on 2 cores, so the
# wheel is built once and kept in $SEMCODE_WHEEL_CACHE (default ~/.cache/semcode-build/wheels);
# later setups, CI runs included, install it in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_VERSION=0.3.36   # keep in step with pyproject.toml
# torch for training/ (--dev): pinned so pip takes a CPU build already on disk where the
# machine has one, instead of resolving the newest (a CUDA build of several GB)
TORCH_VERSION="${SEMCODE_TORCH_VERSION:-2.13.0}"
WHEELS="${SEMCODE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/semcode-build/wheels}"
PYTHON="${PYTHON:-python3}"
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev,train]"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "semcode needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip wheel setuptools

mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_CPP_VERSION once (about 20 minutes on 2 cores; cached in $WHEELS)..." >&2
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}" \
    "${PIP[@]}" wheel --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_CPP_VERSION"
fi
if [ -n "$extras" ] && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  "${PIP[@]}" install "torch==$TORCH_VERSION"
fi
"${PIP[@]}" install --find-links "$WHEELS" -e ".$extras"
if [ -n "$extras" ]; then
  # llama.cpp's GGUF converter (training/, and the tests that export a tiny model): from
  # the llama-cpp-python sdist on PyPI, fetched once into the build cache (2 MB)
  .venv/bin/python -m training.reranker.converter >/dev/null \
    || echo "warning: llama.cpp's converter could not be fetched (tests that convert to GGUF will fail)" >&2
fi
echo "semcode installed: $(.venv/bin/semcode --version)" >&2
