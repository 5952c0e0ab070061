#!/usr/bin/env bash
# Neovim 0.12 (ghost text: vim.lsp.inline_completion) on a system whose own nvim is older, without
# installing anything system-wide: downloads Debian sid's neovim and the libraries it needs
# (sid's glibc included) with apt pointed at a private state dir, extracts them with dpkg-deb into
# a cache dir and writes a launcher that starts nvim through that glibc's dynamic loader.
#
#   bash editors/neovim/install-nvim-0.12.sh      # prints the launcher path (idempotent)
#
# Needs apt-get and dpkg-deb (Debian/Ubuntu on x86_64) and access to a Debian mirror.
# Environment: GPT_LSP_NVIM_CACHE (default ~/.cache/gpt-lsp-nvim-0.12), DEBIAN_MIRROR (default:
# the first Debian mirror in this machine's apt sources, else http://deb.debian.org/debian).
# Used by tests/editors/test_neovim_inline.py (GPT_LSP_NVIM_012 may name an existing launcher).
set -euo pipefail

CACHE="${GPT_LSP_NVIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpt-lsp-nvim-0.12}"
ROOT="$CACHE/root"
LAUNCHER="$CACHE/nvim"
PKGS=(neovim neovim-runtime libc6 libgcc-s1 libluajit-5.1-2 libtree-sitter0.26 libunibilium4 libutf8proc3
  libuv1t64 lua-lpeg lua-luv)

say() { printf '[nvim-0.12] %s\n' "$*" >&2; }

if [ -x "$LAUNCHER" ] && "$LAUNCHER" --version 2>/dev/null | head -1 | grep -Eq '^NVIM v0\.(1[2-9]|[2-9][0-9])'; then
  echo "$LAUNCHER"
  exit 0
fi
[ "$(uname -m)" = x86_64 ] || { echo "only x86_64 is supported (found $(uname -m))" >&2; exit 2; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
  echo "needs apt-get and dpkg-deb (Debian or Ubuntu)" >&2; exit 2; }

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # deb822 (.sources: "URIs: ...") or one-line ("deb URI suite ...") entries; skip the security mirror.
  mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n' \
    | grep -v -e security -e '^$' | grep -m1 debian || true)"
  [ -n "$mirror" ] || mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
    | grep -v security | grep -m1 debian || true)"
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=""
[ -f "$keyring" ] && signed="[signed-by=$keyring] "

APT="$CACHE/apt"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/debs"
echo "deb ${signed}${mirror%/} sid main" > "$APT/sources.list"
: > "$APT/status"
APT_OPTS=(
  -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/none"
  -o "Dir::State::Lists=$APT/lists" -o "Dir::State::Status=$APT/status"
  -o "Dir::Cache=$APT" -o "Dir::Cache::Archives=$APT/archives"
  -o "APT::Sandbox::User=$(id -un)" -o "Debug::NoLocking=1" -o "Acquire::Languages=none"
  -o "APT::Architecture=amd64" -o "APT::Architectures=amd64"
)
say "apt-get update (sid, $mirror) into $APT"
apt-get "${APT_OPTS[@]}" -qq update >&2
say "apt-get download ${PKGS[*]}"
rm -f "$APT"/debs/*.deb
(cd "$APT/debs" && apt-get "${APT_OPTS[@]}" -qq download "${PKGS[@]}" >&2)

rm -rf "$ROOT.new" && mkdir -p "$ROOT.new"
for deb in "$APT"/debs/*.deb; do
  dpkg-deb -x "$deb" "$ROOT.new"
done
rm -rf "$ROOT" && mv "$ROOT.new" "$ROOT"

loader="$ROOT/usr/lib64/ld-linux-x86-64.so.2"
[ -e "$loader" ] || loader="$ROOT/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
[ -e "$loader" ] || { echo "no ld-linux-x86-64.so.2 in the extracted libc6" >&2; exit 1; }
libs="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu:$ROOT/usr/lib:$ROOT/lib"
# Only nvim runs through the private loader; programs it starts (the LSP server) use the system's.
cat > "$LAUNCHER" <<EOF
#!/bin/sh
# Neovim from Debian sid, extracted by editors/neovim/install-nvim-0.12.sh.
export VIMRUNTIME="$ROOT/usr/share/nvim/runtime"
exec "$loader" --library-path "$libs" "$ROOT/usr/bin/nvim" "\$@"
EOF
chmod +x "$LAUNCHER"
version="$("$LAUNCHER" --version | head -1)" || { echo "the extracted nvim does not start" >&2; exit 1; }
say "$version"
echo "$version" | grep -Eq '^NVIM v0\.(1[2-9]|[2-9][0-9])' || { echo "got $version, not 0.12+" >&2; exit 1; }
echo "$LAUNCHER"
