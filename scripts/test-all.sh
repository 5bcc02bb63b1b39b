#!/usr/bin/env bash
# Run every test suite: Python (ruff, mypy, pytest), the Neovim plugin, the VS Code
# extension, and the benchmark harness in --quick mode. CI runs exactly this.
# Ends with one line `N passed, N failed, N skipped` summing the suites' own counts.
#
# Skips are counted, never hidden: a test or suite that should run on this machine and
# skips is a failure. pytest enforces that per test (tests/runner_rules.py lists the
# expected skips, with reasons); Neovim's run.sh fails on any skip; a whole suite that
# cannot run here (vscode-e2e's exit 77) fails unless SEMCODE_EXPECTED_SKIPS names it
# (space-separated suite names, for a developer machine that cannot host it; CI sets none).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
mkdir -p .test-artifacts
passed=0 failed=0 skipped=0 suite_failures=()
expected_skips=" ${SEMCODE_EXPECTED_SKIPS:-} "

count_from() {  # add the "N passed" / "N failed" / "N skipped" of a closing line to the totals
  local line="$1"
  local p f s
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' | tail -1)
  f=$(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | awk '{s += $1} END {print s + 0}')
  s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
}

run_suite() {  # run_suite NAME COMMAND...: fails the run on a non-zero exit or no tests
  local name="$1"; shift
  echo "=== $name: $*"
  local log="$ROOT/.test-artifacts/$name.log"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local last
  last=$(grep -E '[0-9]+ (passed|failed)' "$log" | tail -1)
  if [ -z "$last" ]; then
    echo "=== $name: ran no test (rc=$rc)"; suite_failures+=("$name (no tests)"); failed=$((failed + 1))
    return
  fi
  count_from "$last"
  if [ "$rc" -ne 0 ]; then
    suite_failures+=("$name (exit $rc)")
    grep -qE '[1-9][0-9]* (failed|error)' <<<"$last" || failed=$((failed + 1))
  fi
}

echo "=== setup"
bash scripts/setup.sh --dev || { echo "setup failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
export PATH="$ROOT/.venv/bin:$PATH"

echo "=== lint: ruff + mypy"
if ruff check server tests bench && mypy; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); suite_failures+=("lint")
fi

# pytest: exit code 5 (no tests collected) is a failure, not a pass.
run_suite pytest python -m pytest -q -p no:cacheprovider

[ -e clients/neovim/tests/run.sh ] && run_suite neovim bash clients/neovim/tests/run.sh
[ -e clients/vscode/scripts/test.sh ] && run_suite vscode bash clients/vscode/scripts/test.sh
[ -e bench/run ] && run_suite bench bash bench/run --quick

# VS Code end to end: the packaged .vsix in a real VS Code host (code-server, headless
# Chromium). It installs its own prerequisites; exit 77 means it could not run here.
if [ -e clients/vscode/scripts/e2e.sh ]; then
  echo "=== vscode-e2e: bash clients/vscode/scripts/e2e.sh"
  bash clients/vscode/scripts/e2e.sh 2>&1 | tee .test-artifacts/vscode-e2e.log
  case ${PIPESTATUS[0]} in
    0) passed=$((passed + 1)) ;;
    77)
      if [[ "$expected_skips" == *" vscode-e2e "* ]]; then
        echo "=== vscode-e2e: COULD NOT RUN on this machine (reason above): skipped, as SEMCODE_EXPECTED_SKIPS allows"
        skipped=$((skipped + 1))
      else
        echo "=== vscode-e2e: COULD NOT RUN on this machine (reason above): it should run here, so it failed"
        failed=$((failed + 1)); suite_failures+=("vscode-e2e (could not run)")
      fi ;;
    *) failed=$((failed + 1)); suite_failures+=("vscode-e2e") ;;
  esac
fi

echo
if [ ${#suite_failures[@]} -gt 0 ]; then
  echo "failed suites: ${suite_failures[*]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ ${#suite_failures[@]} -eq 0 ]
