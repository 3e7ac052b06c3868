#!/usr/bin/env bash
# Runs every test of nitro-rs, installing what the tests need first.
#
#   scripts/test.sh            # all tests, then scripts/install-check.sh (`cargo install --path cli`
#                              # and the installed `nitro` used outside the clone)
#   scripts/test.sh -p nitro-router   # extra arguments go to `cargo test` (no install check)
#
# Installs (when missing), and says so before it does:
#   - Debian packages, with apt-get as root (through sudo unless already root), without their
#     recommended packages: `chromium` (the browser test's headless browser), `fonts-noto-cjk`
#     (the chat's Chinese text in screenshots), `nodejs` and `npm` (the browser driver),
#     `redis-server` and `openssl` (the pub/sub tests: a real Redis, TLS with a throwaway
#     certificate), `iproute2` (`ss`, for the listen backlog test);
#   - the browser driver's npm packages, into tests/browser/node_modules (no root);
#   - crossws's npm packages, into tests/crossws/node_modules (the pub/sub interop test);
#   - the `rust-analyzer` rustup component (the editor test runs the real one; no root).
# Set NITRO_TEST_NO_INSTALL=1 to install nothing (the browser test then fails if they are missing).
# Route builds of all tests share target/nitro-test-routes.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2) # the listen backlog test
if ((${#need_apt[@]})) && [ -z "${NITRO_TEST_NO_INSTALL:-}" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi
  echo "scripts/test.sh: installing Debian packages as root, without recommended packages: ${need_apt[*]}" >&2
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -d tests/browser/node_modules/playwright-core ] && [ -z "${NITRO_TEST_NO_INSTALL:-}" ]; then
  echo "scripts/test.sh: installing the browser driver (npm ci)" >&2
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

if [ ! -d tests/crossws/node_modules/crossws ] && [ -z "${NITRO_TEST_NO_INSTALL:-}" ]; then
  echo "scripts/test.sh: installing crossws for the pub/sub interop test (npm ci)" >&2
  npm ci --prefix tests/crossws --no-audit --no-fund --loglevel=error
fi

if ! rust-analyzer --version >/dev/null 2>&1 && [ -z "${NITRO_TEST_NO_INSTALL:-}" ]; then
  echo "scripts/test.sh: installing the rust-analyzer rustup component" >&2
  rustup component add rust-analyzer
fi

cargo test --workspace "$@"

# A full run (no arguments) also installs the CLI from the clone as a user would and uses the
# installed `nitro` in a folder outside it (scripts/install-check.sh, under a minute once the
# tests have built everything).
if [ $# -eq 0 ]; then
  scripts/install-check.sh
fi
