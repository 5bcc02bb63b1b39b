#!/usr/bin/env bash
# The VS Code extension's test runner (used by CI):
#   npm ci → typecheck → bundle → unit tests → integration tests → vsce package → vsix check
# Prints a last line exactly "N passed, N failed" (vitest tests counted one by one, every
# other step as one) and exits non-zero if anything failed.
#
# Environment:
#   SEMCODE_SERVER_CMD  server command for the integration tests
#                       (default: <repo>/.venv/bin/semcode serve, else <repo>/.venv/bin/python -m semcode.lsp)
#   SKIP_NPM_CI=1       reuse node_modules as they are (local iteration)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

passed=0
failed=0
failures=()

step() { # step NAME COMMAND...: one pass/fail
  local name="$1"
  shift
  echo "==> $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "    ok: $name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "    FAILED: $name"
  fi
}

vitest_step() { # vitest_step PROJECT: counts each test
  local project="$1" json="$results/$1.json"
  echo "==> vitest ($project)"
  npx vitest run --project "$project" --reporter=default --reporter=json --outputFile.json="$json"
  local rc=$?
  if [ -s "$json" ]; then
    local counts
    counts="$(node -e '
      const r = require(process.argv[1]);
      process.stdout.write(`${r.numPassedTests} ${r.numFailedTests} ${r.numPendingTests + r.numTodoTests} ${r.numFailedTestSuites}`);
    ' "$json")"
    read -r p f s fs <<<"$counts"
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$s" -gt 0 ]; then echo "    note: $s $project test(s) skipped (see warnings above for why)"; fi
    if [ "$f" -gt 0 ]; then failures+=("vitest $project: $f test(s)"); fi
    # A file that failed to load counts once even though none of its tests ran.
    if [ "$fs" -gt 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + fs)); failures+=("vitest $project: $fs file(s)"); fi
  elif [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
    failures+=("vitest $project (no report)")
  fi
}

check_vsix() {
  local vsix
  vsix="$(ls -t ./*.vsix 2>/dev/null | head -1)"
  [ -n "$vsix" ] || { echo "no .vsix produced"; return 1; }
  local listing
  listing="$(node -e '
    // List the zip central directory without unzip(1), which CI images may lack.
    const b = require("fs").readFileSync(process.argv[1]);
    let i = b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    let off = b.readUInt32LE(i + 16), n = b.readUInt16LE(i + 10);
    for (let k = 0; k < n; k++) {
      const len = b.readUInt16LE(off + 28), extra = b.readUInt16LE(off + 30), comment = b.readUInt16LE(off + 32);
      console.log(b.subarray(off + 46, off + 46 + len).toString());
      off += 46 + len + extra + comment;
    }' "$vsix")"
  echo "$listing" | sed 's/^/    /'
  for f in extension/package.json extension/out/extension.js extension/readme.md extension/LICENSE.txt; do
    grep -qx "$f" <<<"$listing" || { echo "missing from $vsix: $f"; return 1; }
  done
  if grep -q 'node_modules/\|/src/\|\.map$' <<<"$listing"; then echo "sources or node_modules leaked into $vsix"; return 1; fi
}

if [ "${SKIP_NPM_CI:-}" = "1" ] && [ -d node_modules ]; then
  echo "==> npm ci skipped (SKIP_NPM_CI=1)"
else
  # --prefer-offline: use the npm cache (~/.npm) that CI restores between runs.
  step "npm ci" npm ci --prefer-offline --no-audit --no-fund
fi
step "typecheck (tsc --noEmit, strict)" npm run --silent typecheck
step "bundle (esbuild)" npm run --silent bundle
vitest_step unit
vitest_step integration
step "vsce package" npx vsce package --no-dependencies --allow-missing-repository
step "vsix contents" check_vsix

echo
if [ "${#failures[@]}" -gt 0 ]; then
  echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
