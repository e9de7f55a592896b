#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECS seconds (default 60; the issue's runs
# are 600) with cargo-fuzz on nightly, JOBS targets at a time (default 1).
# Each starts from its kept seeds (fuzz/seeds/TARGET, committed) and grows a
# working corpus in fuzz/corpus/TARGET (not committed). A crash leaves its
# input in fuzz/artifacts/TARGET: minimise it (cargo fuzz tmin), fix the
# bug, and keep the input in fuzz/regressions/TARGET/ so that `make test`
# runs it from then on. One summary line per target goes to
# fuzz/last-run.txt (target, seconds, executions, corpus size, result).
set -uo pipefail
cd "$(dirname "$0")"
SECS=${FUZZ_SECS:-60}
JOBS=${JOBS:-1}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz build || exit 1
: > last-run.txt
run_one() {
    local target=$1 log="/tmp/tally-fuzz-$1.log"
    mkdir -p "corpus/$target"
    cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$SECS" -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 > "$log" 2>&1
    local rc=$?
    local execs corpus
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    corpus=$(find "corpus/$target" -type f | wc -l)
    local result=ok; [ $rc -eq 0 ] || result="CRASH (see $log and artifacts/$target)"
    echo "$target ${SECS}s executions=${execs:-?} corpus=$corpus $result" | tee -a last-run.txt
}
export -f run_one; export SECS
cargo +nightly fuzz list | xargs -P "$JOBS" -I{} bash -c 'run_one {}'
! grep -q CRASH last-run.txt
