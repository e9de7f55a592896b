#!/usr/bin/env bash
# Whole-pipeline throughput, in one run on this machine:
#   tally record --fast   vs   bare openh264 (same settings)   vs   ffmpeg libx264 ultrafast/zerolatency
# Prints a Markdown table (paste into docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES=${FRAMES:-600}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

cargo build --release --locked --quiet
cargo build --release --locked --quiet --example raw_h264
TALLY=target/release/tally
RAW=target/release/examples/raw_h264

now() { date +%s.%N; }

echo "| size | tally record --fast (fps) | bare openh264 (fps) | pipeline / bare | ffmpeg libx264 ultrafast zerolatency (fps) |"
echo "|---|---|---|---|---|"
for size in 1280x720 1920x1080; do
    secs=$(awk -v f="$FRAMES" 'BEGIN { printf "%.3f", f / 30 }')
    t0=$(now)
    "$TALLY" record "$OUT/t.flv" --size "$size" --fast --duration "$secs" 2>/dev/null
    t1=$(now)
    tally_fps=$(awk -v f="$FRAMES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", f / (b - a) }')
    raw_fps=$("$RAW" "$size" "$FRAMES" | sed -n 's/^fps=//p')
    t0=$(now)
    ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=$size:rate=30" -frames:v "$FRAMES" \
        -c:v libx264 -preset ultrafast -tune zerolatency -b:v 2500k -g 60 -threads 1 -f flv -y "$OUT/f.flv"
    t1=$(now)
    ff_fps=$(awk -v f="$FRAMES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", f / (b - a) }')
    ratio=$(awk -v a="$tally_fps" -v b="$raw_fps" 'BEGIN { printf "%.2f", a / b }')
    echo "| $size | $tally_fps | $raw_fps | $ratio | $ff_fps |"
done
