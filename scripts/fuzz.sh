#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, cargo-fuzz) and runs each for a short while.
#
#   scripts/fuzz.sh                  # build, then fuzz each target for 30 s
#   FUZZ_SECONDS=600 scripts/fuzz.sh # longer
#   FUZZ_SECONDS=0 scripts/fuzz.sh   # build only
#
# Installs what it needs when missing: the nightly toolchain (rustup, minimal profile) and
# cargo-fuzz (cargo install). A failing input is saved under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: installing the nightly toolchain" >&2
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

for target in $(cargo +nightly fuzz list); do
  cargo +nightly fuzz build "$target"
  if [ "$seconds" -gt 0 ]; then
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds"
  fi
done
