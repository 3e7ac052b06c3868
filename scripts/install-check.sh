#!/usr/bin/env bash
# Installs the CLI from this clone as a user would (`cargo install --path cli`) and uses the
# installed `nitro` in a folder outside the clone: `init`, `build`, `start` of the built output,
# and a short `dev`, each answering a request. Proves the installed binary needs nothing of
# the clone (the route crates' sources are inside it) and works offline once the dependencies
# are downloaded.
#
#   scripts/install-check.sh       # run by scripts/test.sh after the tests
#
# Kept fast by reusing builds: the install builds into this clone's target/ (`--debug`: the
# dependencies the tests compiled; only the crates whose features differ from the test build
# are rebuilt), and the routes of the new project build into target/nitro-test-routes, where
# the tests left the route dependencies compiled (NITRO_TARGET_DIR is only a cache: the
# project's sources, `.nitro/` with the `nitro` crate, are written by the installed binary).
# Everything runs with CARGO_NET_OFFLINE=true: the dependencies come from cargo's cache.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

work=$(mktemp -d "${TMPDIR:-/tmp}/nitro-install-check.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "install-check: $*" >&2
  exit 1
}

export CARGO_NET_OFFLINE=true NO_COLOR=1
unset PORT HOST RUST_LOG

echo "install-check: cargo install --path cli --root <tmp> --debug --locked --offline" >&2
CARGO_TARGET_DIR="$repo/target" cargo install --quiet --path cli --root "$work/root" \
  --debug --locked --offline
nitro=$work/root/bin/nitro
[ -x "$nitro" ] || fail "no \`nitro\` in $work/root/bin after cargo install"

# Waits for `URL` on the stdout (captured in $1) of a server started in the background, and
# prints its port.
port_of() {
  local out=$1 what=$2
  for _ in $(seq 1 1200); do
    if grep -qo 'http://127\.0\.0\.1:[0-9]*' "$out" 2>/dev/null; then
      grep -o 'http://127\.0\.0\.1:[0-9]*' "$out" | head -n1 | sed 's/.*://'
      return 0
    fi
    sleep 0.5
  done
  fail "$what printed no URL in 10 minutes; its output: $(cat "$out" "$out.err" 2>/dev/null)"
}

# `GET path` on 127.0.0.1:port: prints the status code, then the body.
get() {
  local port=$1 path=$2 response
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nAccept: text/html\r\nConnection: close\r\n\r\n' "$path" "$port" >&3
  response=$(cat <&3)
  exec 3<&-
  echo "$response" | head -n1 | cut -d' ' -f2
  echo "$response" | sed '1,/^\r$/d'
}

expect() {
  local port=$1 path=$2 status=$3 needle=$4 what=$5 answer
  answer=$(get "$port" "$path")
  [ "$(echo "$answer" | head -n1)" = "$status" ] ||
    fail "$what: \`GET $path\` answered $(echo "$answer" | head -n1), not $status"
  echo "$answer" | grep -q "$needle" ||
    fail "$what: \`GET $path\` has no \`$needle\` in its body"
}

cd "$work"
export NITRO_TARGET_DIR="$repo/target/nitro-test-routes"

echo "install-check: installed in ${SECONDS}s; nitro init, build, start (in $work)" >&2
"$nitro" init app >/dev/null 2>"$work/init.err" || fail "nitro init failed: $(cat "$work/init.err")"
"$nitro" build app >/dev/null 2>"$work/build.err" || fail "nitro build failed: $(cat "$work/build.err")"
# The built output alone, from another folder: no sources, no cargo.
mkdir elsewhere
(cd elsewhere && exec ../app/.output/server/nitro start --port 0 >"$work/start.out" 2>"$work/start.out.err") &
pids+=($!)
port=$(port_of "$work/start.out" "nitro start")
expect "$port" / 200 '<html' "nitro start"
expect "$port" /_ws 426 '' "nitro start (the WebSocket route, loaded)"
kill "${pids[-1]}"

echo "install-check: built and started by ${SECONDS}s; nitro dev" >&2
"$nitro" dev app --port 0 >"$work/dev.out" 2>"$work/dev.out.err" &
pids+=($!)
port=$(port_of "$work/dev.out" "nitro dev")
expect "$port" / 200 '<html' "nitro dev"
expect "$port" /_ws 426 '' "nitro dev (the WebSocket route, loaded)"
kill "${pids[-1]}"

# What the installed binary wrote in the project names nothing of the clone (the binary that
# `nitro build` copied into .output/ carries its own debug paths, which is not a dependency).
if refs=$(grep -rl --exclude-dir=.output -F "$repo" app); then
  fail "files of the new project name the clone \`$repo\`: $refs"
fi

echo "install-check: ok in ${SECONDS}s (the installed nitro initialised, built, started and served a project outside the clone)" >&2
echo "install-check: 1 passed, 0 failed"
