#!/usr/bin/env bash
# Runs every test of nitro-rs, installing what the tests need first.
#
#   scripts/test.sh            # all tests
#   scripts/test.sh -p nitro-router   # extra arguments go to `cargo test`
#
# Installs (when missing): Debian's chromium and CJK fonts for the browser test, `ss`
# (iproute2) for the listen backlog test, Node.js, and
# the browser driver's npm packages. Route builds of all tests share target/nitro-test-routes.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2) # the listen backlog test
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
  echo "scripts/test.sh: installing ${need_apt[*]}" >&2
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "scripts/test.sh: installing the browser driver (npm ci)" >&2
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

exec cargo test --workspace "$@"
