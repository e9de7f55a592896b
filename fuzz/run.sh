#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECS seconds (default 60) with cargo-fuzz on nightly.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${FUZZ_SECS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
for target in $(cargo +nightly fuzz list); do
    echo "== fuzzing $target for ${SECS}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$SECS" -rss_limit_mb=1024 -max_len=65536
done
