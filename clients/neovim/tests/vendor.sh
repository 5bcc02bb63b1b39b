#!/usr/bin/env bash
# Print the folder holding the real picker plugins the Neovim specs drive (telescope.nvim,
# plenary.nvim, fzf-lua), at the pinned commits below. In order: $SEMCODE_NVIM_VENDOR;
# <repo>/../shared/vendor/nvim; the same beside the main checkout of a git worktree; a
# cache folder ($SEMCODE_NVIM_VENDOR_CACHE, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/semcode-build/nvim-vendor) filled by fetching each
# pinned commit with git from $SEMCODE_NVIM_PLUGIN_BASE (default https://github.com).
# When none works: exit 1 and one line on stderr saying what is missing.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"

# folder  owner/repo  commit  (the versions ../shared/vendor/nvim/README.md lists)
PINS=(
  "telescope.nvim nvim-telescope/telescope.nvim 5255aa27c422de944791318024167ad5d40aad20"
  "plenary.nvim nvim-lua/plenary.nvim 50012918b2fc8357b87cff2a7f7f0446e47da174"
  "fzf-lua ibhagwan/fzf-lua 9ad7340dcc6d2afc30e64fb4088597c7573ed62c"
)

complete() {  # complete DIR: every pinned plugin is there
  local pin name
  for pin in "${PINS[@]}"; do
    name="${pin%% *}"
    [[ -d "$1/$name/lua" ]] || return 1
  done
}

candidates=("${SEMCODE_NVIM_VENDOR:-}" "$(dirname "$repo_root")/shared/vendor/nvim")
if common="$(git -C "$repo_root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)"; then
  candidates+=("$(dirname "$(dirname "$common")")/shared/vendor/nvim")
fi
for dir in "${candidates[@]}"; do
  if [[ -n "$dir" ]] && complete "$dir"; then echo "$dir"; exit 0; fi
done

cache="${SEMCODE_NVIM_VENDOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/semcode-build/nvim-vendor}"
base="${SEMCODE_NVIM_PLUGIN_BASE:-https://github.com}"
missing=()
for pin in "${PINS[@]}"; do
  read -r name repo commit <<<"$pin"
  dest="$cache/$name"
  [[ -f "$dest/.semcode-pin" && "$(cat "$dest/.semcode-pin")" == "$commit" ]] && continue
  tmp="$cache/.$name.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  if GIT_TERMINAL_PROMPT=0 timeout 120 git -C "$tmp" init -q >/dev/null 2>&1 &&
     GIT_TERMINAL_PROMPT=0 timeout 120 git -C "$tmp" fetch -q --depth 1 "$base/$repo" "$commit" >/dev/null 2>&1 &&
     git -C "$tmp" -c advice.detachedHead=false checkout -q FETCH_HEAD >/dev/null 2>&1; then
    echo "$commit" >"$tmp/.semcode-pin"
    rm -rf "$dest" && mv "$tmp" "$dest"
  else
    rm -rf "$tmp"
    missing+=("$name")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then echo "$cache"; exit 0; fi
echo "!! Neovim picker plugins missing: ${missing[*]} (no $(dirname "$repo_root")/shared/vendor/nvim, and fetching them from $base failed; set SEMCODE_NVIM_VENDOR): the telescope and fzf-lua specs will fail" >&2
exit 1
