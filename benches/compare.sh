#!/usr/bin/env bash
# Whole-pipeline throughput, in one run on this machine, all single-threaded:
#   tally record --fast        the whole pipeline: pattern + tone -> openh264 + fdk-aac -> FLV file
#   bare openh264              the same encoder settings on pre-rendered pattern frames
#   ffmpeg libx264 (pattern)   ultrafast/zerolatency, fed Tally's own pattern frames (Y4M pipe)
#   ffmpeg libx264 (testsrc2)  the same encoder on ffmpeg's busier synthetic source
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
fps_of() { awk -v f="$FRAMES" -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", f / (b - a) }'; }
X264=(-c:v libx264 -preset ultrafast -tune zerolatency -b:v 2500k -g 60 -threads 1 -an -f flv -y)

echo "| size | tally record --fast (fps) | bare openh264 (fps) | pipeline / bare | ffmpeg libx264 on Tally's pattern (fps) | ffmpeg libx264 on testsrc2 (fps) |"
echo "|---|---|---|---|---|---|"
for size in 1280x720 1920x1080; do
    secs=$(awk -v f="$FRAMES" 'BEGIN { printf "%.3f", f / 30 }')
    t0=$(now)
    "$TALLY" record "$OUT/t.flv" --size "$size" --fast --duration "$secs" 2>/dev/null
    t1=$(now)
    tally_fps=$(fps_of "$t0" "$t1")
    raw_fps=$("$RAW" "$size" "$FRAMES" | sed -n 's/^fps=//p')
    t0=$(now)
    "$RAW" --y4m "$size" "$FRAMES" | ffmpeg -hide_banner -loglevel error -f yuv4mpegpipe -i - "${X264[@]}" "$OUT/p.flv"
    t1=$(now)
    ffp_fps=$(fps_of "$t0" "$t1")
    t0=$(now)
    ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=$size:rate=30" -frames:v "$FRAMES" "${X264[@]}" "$OUT/f.flv"
    t1=$(now)
    fft_fps=$(fps_of "$t0" "$t1")
    ratio=$(awk -v a="$tally_fps" -v b="$raw_fps" 'BEGIN { printf "%.2f", a / b }')
    echo "| $size | $tally_fps | $raw_fps | $ratio | $ffp_fps | $fft_fps |"
done
