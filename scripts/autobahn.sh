#!/usr/bin/env bash
# WebSocket conformance: the Autobahn|Testsuite fuzzingclient (case groups 1-10; 12 and 13 are
# permessage-deflate, which nitro does not negotiate) against `examples/echo`, served by
# `nitro dev`, then built with `nitro build` and served by `nitro start`. Judged with
# --strict-close: every failed connection must be closed with the right code (1002, 1007,
# 1009) before the TCP connection goes. Its `nitro.toml` raises the message limit to 16 MiB,
# so group 9 (messages up to 16 MiB) also checks that `nitro start` applies `[limits]`.
#
#   scripts/autobahn.sh                 # all cases
#   CASES="1.* 5.*" scripts/autobahn.sh # a subset (see the harness README for the variables)
#
# The harness is in this repository, tests/autobahn/ (see its README): it installs its own
# Python runner under target/autobahn/ (Python 2.7 for wstest, else Python 3.10+ for kosoku,
# from PyPI). Reports go to target/autobahn/reports-dev/ and reports-start/ (index.html,
# index.json).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
harness="$root/tests/autobahn/run-fuzzingclient.sh"

cargo build -q --bin nitro
export AUTOBAHN_HOME="$root/target/autobahn"
# Route builds share the test suite's target dir (serde and friends compile once).
export NITRO_TARGET_DIR="$root/target/nitro-test-routes"
mkdir -p "$AUTOBAHN_HOME"

server=""
stop_server() {
  if [ -n "$server" ]; then
    kill -INT "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
trap stop_server EXIT

# conform LABEL COMMAND...: starts the server, waits (at most 5 minutes: the first run
# compiles the route) for the URL it prints, runs the suite, stops the server. The report is
# kept in target/autobahn/reports-LABEL/.
conform() {
  local label="$1"
  shift
  local log="$AUTOBAHN_HOME/server-$label.log"
  : >"$log"
  "$@" >"$log" 2>&1 &
  server=$!
  local url=""
  for _ in $(seq 1 600); do
    url="$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$log" | head -n 1 || true)"
    [ -n "$url" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
      echo "scripts/autobahn.sh: \`$*\` exited:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.5
  done
  if [ -z "$url" ]; then
    echo "scripts/autobahn.sh: \`$*\` printed no URL within 5 minutes:" >&2
    cat "$log" >&2
    exit 1
  fi
  echo "::: autobahn against \`$*\`"
  bash "$harness" "ws://${url#http://}/_ws" "nitro-$label" -- --strict-close
  stop_server
  rm -rf "$AUTOBAHN_HOME/reports-$label"
  mv "$AUTOBAHN_HOME/reports" "$AUTOBAHN_HOME/reports-$label"
}

conform dev target/debug/nitro dev examples/echo --port 0
target/debug/nitro build examples/echo >"$AUTOBAHN_HOME/build.log" 2>&1 || {
  cat "$AUTOBAHN_HOME/build.log" >&2
  exit 1
}
conform start target/debug/nitro start examples/echo/.output --port 0
