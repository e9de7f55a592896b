#!/usr/bin/env bash
# Whole-pipeline throughput, Tally against ffmpeg, in one run on this machine,
# both given the same job:
#   input   the same files: Tally's test pattern as Y4M (FRAMES frames, 30 fps)
#           and a 440 Hz stereo tone as 48 kHz WAV of the same length
#   output  H.264 at 2500 kbit/s (keyframe every 2 s) + AAC-LC 128 kbit/s,
#           muxed to an FLV file
#   tally   tally record --fast  (openh264, one encoder thread; fdk-aac)
#   ffmpeg  libx264 -preset ultrafast -tune zerolatency -threads 1; its aac
# Both are timed the same way: the whole process, wall clock and CPU
# (user + sys) from bash's `time`, median of RUNS runs (default 5); the most
# threads each process had at once (sampled from /proc in a separate run) is
# reported, since neither is single-threaded even with a one-thread encoder.
# For reference, "openh264 alone" encodes the same pattern frames in memory
# (pre-rendered, timed inside the process): the encoder's own ceiling.
# Prints a Markdown table (paste into docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES=${FRAMES:-600}
RUNS=${RUNS:-5}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# TALLY=path/to/tally compares another build (e.g. the one before a change) in the same run.
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --locked --quiet
    cargo build --release --locked --quiet --example raw_h264
fi
TALLY=${TALLY:-target/release/tally}
RAW=${RAW:-target/release/examples/raw_h264}
SECS=$(awk -v f="$FRAMES" 'BEGIN { printf "%.3f", f / 30 }')

# Runs "$@" and prints "wall cpu": wall and user+sys seconds from bash's time.
measure() {
    local t
    t=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1 )
    awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%s %.3f\n", a[1], a[2] + a[3] }'
}

# Median of RUNS timed runs ("wall cpu"), then one more, untimed run that
# counts the most threads the process had at once (sampling /proc would
# disturb the timed runs); prints "wall cpu threads".
median_of() {
    local m threads=0 n
    m=$(for _ in $(seq "$RUNS"); do measure "$@"; done | sort -n -k1,1 | awk -v n="$RUNS" 'NR == int((n + 1) / 2)')
    "$@" >/dev/null 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        n=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
        [ "${n:-0}" -gt "$threads" ] && threads=$n
        sleep 0.05
    done
    wait "$pid" || true
    echo "$m $threads"
}

echo "| size | tally record --fast: fps (wall) | CPU s | threads | ffmpeg libx264 + aac: fps (wall) | CPU s | threads | tally / ffmpeg (fps) | openh264 alone (fps, in-process) |"
echo "|---|---|---|---|---|---|---|---|---|"
for size in 1280x720 1920x1080; do
    "$RAW" --y4m "$size" "$FRAMES" > "$OUT/pattern.y4m"
    ffmpeg -hide_banner -loglevel error -f lavfi -i "sine=frequency=440:sample_rate=48000" -ac 2 -t "$SECS" -y "$OUT/tone.wav"
    read -r tw tc tt < <(median_of "$TALLY" record "$OUT/t.flv" --video "y4m:$OUT/pattern.y4m" --audio "wav:$OUT/tone.wav" \
        --fast --video-bitrate 2500 --audio-bitrate 128 --keyint 2)
    read -r fw fc ft < <(median_of ffmpeg -hide_banner -nostdin -loglevel error -i "$OUT/pattern.y4m" -i "$OUT/tone.wav" \
        -map 0:v -map 1:a -c:v libx264 -preset ultrafast -tune zerolatency -b:v 2500k -g 60 -threads 1 \
        -c:a aac -b:a 128k -ac 2 -f flv -y "$OUT/f.flv")
    raw_fps=$("$RAW" "$size" "$FRAMES" | sed -n 's/^fps=//p')
    awk -v s="$size" -v f="$FRAMES" -v tw="$tw" -v tc="$tc" -v tt="$tt" -v fw="$fw" -v fc="$fc" -v ft="$ft" -v raw="$raw_fps" 'BEGIN {
        printf "| %s | %.1f | %.2f | %s | %.1f | %.2f | %s | %.2f | %s |\n", s, f / tw, tc, tt, f / fw, fc, ft, (f / tw) / (f / fw), raw }'
    # Both outputs must hold every frame, or the comparison means nothing.
    for out in t f; do
        n=$(ffprobe -v error -select_streams v -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$OUT/$out.flv")
        [ "$n" -eq "$FRAMES" ] || { echo "error: $out.flv has $n video frames, expected $FRAMES" >&2; exit 1; }
    done
done
