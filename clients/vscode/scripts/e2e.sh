#!/usr/bin/env bash
# End-to-end test in a real VS Code host: code-server (VS Code in the browser) driven by
# headless Chromium through puppeteer-core. Installs the packaged .vsix, opens a fixture
# workspace, runs "semcode: Search Code by Meaning", types a query, presses Enter and
# checks that the editor opened the right file at the right line. Screenshots go to
# <repo>/.test-artifacts/vscode-e2e.png (editor opened) and vscode-e2e-results.png (list).
#
# Prerequisites, installed here when missing (into $SEMCODE_E2E_CACHE, default
# ~/.cache/semcode-e2e): Debian packages chromium + the native build deps of code-server
# (apt-get, needs root), node 24 (npm's `node` package: code-server requires it),
# code-server and puppeteer-core (npm). @vscode/test-electron cannot be used: it
# downloads VS Code, which is not reachable from here.
#
# Two scenarios, each with a fresh profile (SEMCODE_E2E_SCENARIOS, default "server install"):
#   server   the extension starts the server named in settings (semcode.server.path);
#   install  no server anywhere: the driver clicks the extension's own "Install semcode"
#            button with semcode.server.installSource pointing at a wheel built here
#            (python -m build) beside the llama-cpp-python wheel from $SEMCODE_WHEEL_CACHE,
#            waits for pip, then searches. Skipped (with a line saying why) when that
#            llama-cpp-python wheel is missing; the other dependencies come from PyPI.
#
# Exit status: 0 passed, 1 failed, 77 could not run (the reason is printed).
set -uo pipefail

EXIT_CANNOT_RUN=77
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${SEMCODE_E2E_CACHE:-$HOME/.cache/semcode-e2e}"
artifacts="$repo/.test-artifacts"
cannot_run() {
  echo "e2e: CANNOT RUN: $*" >&2
  exit "$EXIT_CANNOT_RUN"
}
log() { echo "e2e: $*"; }

# ---------- prerequisites ----------
mkdir -p "$cache" "$artifacts" || cannot_run "cannot create $cache"
rm -f "$artifacts"/vscode-e2e*.png

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
for pkg in libkrb5-dev libxkbfile-dev libsecret-1-dev build-essential pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || cannot_run "missing ${need_apt[*]} and no apt-get to install them"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  log "installing ${need_apt[*]} (apt)"
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}"; } >"$cache/apt.log" 2>&1 ||
    cannot_run "apt-get install ${need_apt[*]} failed (root needed?); see $cache/apt.log"
fi
chromium_bin="$(command -v chromium)" || cannot_run "chromium is not installed"

node24="$cache/node24/node_modules/.bin/node"
if ! "$node24" --version 2>/dev/null | grep -q '^v24\.'; then
  log "installing node 24 (npm package 'node')"
  mkdir -p "$cache/node24"
  npm install --no-audit --no-fund --prefix "$cache/node24" node@24 >"$cache/node24.log" 2>&1 ||
    cannot_run "npm install node@24 failed; see $cache/node24.log"
fi
export PATH="$(dirname "$node24"):$PATH"

code_server="$cache/cs/node_modules/.bin/code-server"
if ! [ -x "$code_server" ] || ! [ -f "$cache/cs/node_modules/puppeteer-core/package.json" ]; then
  log "installing code-server and puppeteer-core (npm; a few minutes the first time)"
  mkdir -p "$cache/cs"
  npm install --no-audit --no-fund --prefix "$cache/cs" code-server@4 puppeteer-core >"$cache/cs.log" 2>&1 ||
    cannot_run "npm install code-server failed; see $cache/cs.log"
fi

# ---------- the server and the extension ----------
if [ -n "${SEMCODE_SERVER_CMD:-}" ]; then
  read -r -a server_cmd <<<"$SEMCODE_SERVER_CMD"
elif [ -x "$repo/.venv/bin/semcode" ]; then
  server_cmd=("$repo/.venv/bin/semcode" serve)
else
  server_cmd=("$repo/.venv/bin/python" -m semcode.lsp)
fi
[ -x "${server_cmd[0]}" ] || command -v "${server_cmd[0]}" >/dev/null 2>&1 || cannot_run "no semcode server: ${server_cmd[*]}"

cd "$here"
vsix="$(ls -t ./*.vsix 2>/dev/null | head -1)"
if [ -z "$vsix" ] || [ -n "$(find src package.json -newer "$vsix" -print -quit)" ]; then
  log "packaging the extension"
  { [ -d node_modules ] || npm ci --prefer-offline --no-audit --no-fund; } >/dev/null 2>&1 || cannot_run "npm ci failed"
  npx vsce package --no-dependencies --allow-missing-repository >/dev/null || { echo "e2e: vsce package failed" >&2; exit 1; }
  vsix="$(ls -t ./*.vsix | head -1)"
fi
vsix="$here/${vsix#./}"

# ---------- a fresh VS Code profile and workspace per scenario ----------
tmp=""
server_pid=""
stop_code_server() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null
  server_pid=""
}
cleanup() {
  stop_code_server
  [ -n "$tmp" ] || return 0
  if [ "${E2E_KEEP:-}" = "1" ]; then echo "e2e: kept $tmp" >&2; else rm -rf "$tmp" 2>/dev/null || { sleep 2; rm -rf "$tmp"; }; fi
}
trap cleanup EXIT

build_python="${SEMCODE_BUILD_PYTHON:-$repo/.venv/bin/python}"
wheel_cache="${SEMCODE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/semcode-build/wheels}"

# Builds the semcode wheel (from a copy of the sources: the checkout is not written to)
# into $1, next to the cached llama-cpp-python wheel; prints why not on failure.
build_wheels() {
  local out="$1" src="$tmp/src"
  local llama
  llama="$(ls "$wheel_cache"/llama_cpp_python-*.whl 2>/dev/null | head -1)"
  [ -n "$llama" ] || { echo "no llama-cpp-python wheel in $wheel_cache (scripts/setup.sh builds it)"; return 1; }
  mkdir -p "$out" "$src"
  cp -r "$repo/server" "$repo/pyproject.toml" "$repo/README.md" "$repo/LICENSE" "$src/" || return 1
  find "$src" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null
  env -u PYTHONPATH "$build_python" -m build --wheel --no-isolation --outdir "$out" "$src" >"$tmp/build.log" 2>&1 ||
    { echo "python -m build failed; see $tmp/build.log"; tail -5 "$tmp/build.log"; return 1; }
  cp "$llama" "$out/"
}

run_scenario() {
scenario="$1"
tmp="$(mktemp -d /tmp/semcode-e2e.XXXXXX)"

ws="$tmp/workspace"
mkdir -p "$ws/auth" "$ws/net" "$tmp/user-data/User" "$tmp/user-data/Machine" "$tmp/extensions" "$tmp/index"
cat >"$ws/auth/tokens.py" <<'PY'
"""Access tokens."""
import time


class TokenStore:
    """Keeps OAuth tokens per user."""

    def __init__(self):
        self.tokens = {}

    def refresh_expired_tokens(self, now=None):
        """Refresh every token whose expiry time has passed."""
        now = now or time.time()
        for user, token in self.tokens.items():
            if token.expires_at < now:
                self.tokens[user] = token.refresh()
PY
cat >"$ws/net/http_client.py" <<'PY'
import random
import time


class HttpClient:
    def retry_with_backoff(self, request, attempts=3):
        """Send a request again after a growing, jittered delay."""
        for attempt in range(attempts):
            try:
                return self.send(request)
            except ConnectionError:
                time.sleep((2 ** attempt) + random.random())
        raise ConnectionError("gave up")
PY
if [ "$scenario" = "install" ]; then
  if ! why="$(build_wheels "$tmp/wheels")"; then
    # The wheel is built from this checkout with the dev tools setup.sh installs: a
    # failure here is a broken packaging step, not a machine that cannot run the test.
    log "install scenario FAILED: $why"
    exit 1
  fi
  wheel="$(ls "$tmp/wheels"/semcode-*.whl | head -1)"
  log "install scenario: semcode.server.installSource = $wheel"
  server_settings="\"semcode.server.installSource\": \"$wheel\","
  ready_timeout_ms=600000
else
  args_json="$(node -e 'console.log(JSON.stringify(process.argv.slice(1)))' -- "${server_cmd[@]:1}")"
  server_settings="\"semcode.server.path\": \"${server_cmd[0]}\", \"semcode.server.args\": $args_json,"
  ready_timeout_ms="${E2E_READY_TIMEOUT_MS:-120000}"
fi
cat >"$tmp/user-data/User/settings.json" <<JSON
{
  $server_settings
  "semcode.embeddingModel": "off",
  "semcode.rerankerModel": "off",
  "semcode.indexDir": "$tmp/index",
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false
}
JSON
# code-server is a "remote": machine-scoped settings (the server path) are read from the
# Machine settings, the rest from User settings; write both.
cp "$tmp/user-data/User/settings.json" "$tmp/user-data/Machine/settings.json"
printf 'bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n' >"$tmp/config.yaml"
cs_args=(--config "$tmp/config.yaml" --user-data-dir "$tmp/user-data" --extensions-dir "$tmp/extensions")

log "[$scenario] installing $(basename "$vsix") into code-server"
"$code_server" "${cs_args[@]}" --install-extension "$vsix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; echo "e2e: FAILED: code-server could not install the .vsix" >&2; exit 1; }

port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
log "starting code-server on 127.0.0.1:$port"
# No PYTHONPATH into the editor: python3 must not find a checkout's semcode by accident.
env -u PYTHONPATH "$code_server" "${cs_args[@]}" --bind-addr "127.0.0.1:$port" --auth none --disable-telemetry \
  --disable-update-check --disable-workspace-trust --disable-getting-started-override "$ws" >"$tmp/code-server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/code-server.log" >&2; cannot_run "code-server exited at start"; }
  sleep 0.5
done

# ---------- drive the UI ----------
log "[$scenario] driving VS Code in headless chromium"
E2E_URL="http://127.0.0.1:$port/?folder=$ws" E2E_CHROMIUM="$chromium_bin" E2E_ARTIFACTS="$artifacts" \
  E2E_PUPPETEER="$cache/cs/node_modules/puppeteer-core" E2E_WORKSPACE="$ws" \
  E2E_SCENARIO="$scenario" E2E_READY_TIMEOUT_MS="$ready_timeout_ms" \
  timeout $(( ready_timeout_ms / 1000 + 180 )) node "$here/scripts/e2e-driver.mjs"
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "--- code-server log (tail) ---" >&2
  tail -30 "$tmp/code-server.log" >&2
  # The extension's own output is in the exthost log of the profile.
  echo "--- extension output (tail) ---" >&2
  find "$tmp/user-data/logs" -name '*semcode*' -type f -exec tail -30 {} \; 2>/dev/null >&2
  echo "e2e: FAILED: $scenario (screenshots in $artifacts)" >&2
  exit 1
fi
if [ "$scenario" = "install" ]; then
  log "[install] the extension's venv has: $(find "$tmp/user-data" -path '*venv/bin/semcode' | head -1)"
fi
stop_code_server
if [ "${E2E_KEEP:-}" = "1" ]; then
  echo "e2e: kept $tmp" >&2
else
  # The language server may still be saving its index for a moment after code-server stops.
  rm -rf "$tmp" 2>/dev/null || { sleep 2; rm -rf "$tmp"; }
fi
tmp=""
log "[$scenario] passed"
}

for scenario in ${SEMCODE_E2E_SCENARIOS:-server install}; do
  run_scenario "$scenario"
done
log "PASSED (screenshots: $artifacts/vscode-e2e*.png)"
