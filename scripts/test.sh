#!/usr/bin/env bash
# Runs every test of nitro-rs, installing what the tests need first.
#
#   scripts/test.sh            # all tests
#   scripts/test.sh -p nitro-router   # extra arguments go to `cargo test`
#
# Installs (when missing): Debian's chromium and CJK fonts for the browser test, Node.js, the
# browser driver's npm packages, `ss` (iproute2) for the listen backlog test, and redis-server,
# openssl and crossws's npm packages for the pub/sub tests (a real Redis, TLS with a throwaway
# certificate, a crossws server on the same channel). Route builds of all tests share
# target/nitro-test-routes.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
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

if [ ! -d tests/crossws/node_modules/crossws ]; then
  echo "scripts/test.sh: installing crossws for the pub/sub interop test (npm ci)" >&2
  npm ci --prefix tests/crossws --no-audit --no-fund --loglevel=error
fi

exec cargo test --workspace "$@"
