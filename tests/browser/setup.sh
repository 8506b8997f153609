#!/usr/bin/env bash
# Installs playwright-core for the browser tests into BUILD_DIR/browser/node_modules with
# `npm ci` from the committed package-lock.json, once per build folder (again only when the
# lock file changed). Never a browser: the tests drive Debian's /usr/bin/chromium.
#   tests/browser/setup.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1/tests/browser
dir=$2/browser
missing() { echo "browser tests: $1 is missing (bash tests/stack/deps.sh installs it)" >&2; exit 1; }
command -v node >/dev/null || missing node
command -v npm >/dev/null || missing npm
[[ -x /usr/bin/chromium ]] || missing /usr/bin/chromium
stamp=$dir/node_modules/.ctxd-package-lock.json
if cmp -s "$src/package-lock.json" "$stamp"; then exit 0; fi
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$dir/"
# --prefer-offline: npm's cache first, the registry only for what it lacks
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --prefer-offline --no-audit --no-fund --ignore-scripts
cp "$src/package-lock.json" "$stamp"
