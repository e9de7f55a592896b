#!/usr/bin/env bash
# CPU cost of grabbing a 1920x1080 X11 screen at 30 fps into I420, Tally and
# ffmpeg reading the same private Xvfb one after the other, over the same span.
#
#   screen  Xvfb 1920x1080x24, its root painted with one frame of ffmpeg's
#           testsrc2 (`display -window root`: detailed, colourful)
#   tally   examples/screen_grab: capture::screen::x11::X11Screen, MIT-SHM,
#           BGRX -> I420 BT.709 (yuvutils-rs), paced to 30 fps
#   ffmpeg  ffmpeg -f x11grab -framerate 30 -video_size 1920x1080
#           -vf scale=1920:1080,format=yuv420p -f null - (XCB with SHM,
#           swscale's conversion)
#   Each without and with the cursor (ffmpeg: -draw_mouse 0 / 1).
# CPU is utime+stime of the whole process from /proc/PID/stat between
# WARMUP and WARMUP+SECS, in % of one core; the X server's over the same span
# beside it (it copies every picture into the shared segment); fps too.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
WARMUP=${WARMUP:-2}
cargo build --release --locked --quiet --example screen_grab
GRAB=$PWD/target/release/examples/screen_grab
WORK=$(mktemp -d)
XVFB=
trap '[ -n "$XVFB" ] && kill "$XVFB" 2>/dev/null; rm -rf "$WORK"' EXIT
TICK=$(getconf CLK_TCK)

# Xvfb picks a free display and writes its number to fd 3.
Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$WORK/display" >"$WORK/xvfb.log" 2>&1 &
XVFB=$!
for _ in $(seq 100); do [ -s "$WORK/display" ] && break; sleep 0.1; done
[ -s "$WORK/display" ] || { echo "Xvfb did not start:"; cat "$WORK/xvfb.log"; exit 1; }
export DISPLAY=":$(tr -d '\n' < "$WORK/display")"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080" -frames:v 1 "$WORK/root.png"
# `display -window root` paints the root and exits 1 even when it succeeded.
display -window root "$WORK/root.png" || true

ticks() {
    awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# The last frame count in $1: ffmpeg's progress `frame=N`, screen_grab's
# `t=S frames=N` (not ffmpeg's `drop_frames=N`).
frames_in() {
    grep -oE '(^| )frames?=[0-9]+' "$1" 2>/dev/null | tail -1 | cut -d= -f2 || true
}

# measure NAME LOG -- COMMAND...: runs COMMAND in the background, samples CPU
# and the frame count at WARMUP and WARMUP+SECS, stops it, prints a row.
measure() {
    local name=$1 log=$2
    shift 3
    "$@" >"$log" 2>&1 &
    local pid=$! t0 t1 x0 x1 f0 f1 s0 s1
    sleep "$WARMUP"
    t0=$(ticks "$pid"); x0=$(ticks "$XVFB"); f0=$(frames_in "$log"); s0=$(date +%s.%N)
    sleep "$SECS"
    t1=$(ticks "$pid"); x1=$(ticks "$XVFB"); f1=$(frames_in "$log"); s1=$(date +%s.%N)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    awk -v n="$name" -v t0="$t0" -v t1="$t1" -v x0="$x0" -v x1="$x1" -v f0="${f0:-0}" -v f1="${f1:-0}" \
        -v s0="$s0" -v s1="$s1" -v hz="$TICK" \
        'BEGIN { span = s1 - s0; printf "| %-26s | %5.1f %% | %5.1f %% | %5.1f |\n", n,
                 100 * (t1 - t0) / hz / span, 100 * (x1 - x0) / hz / span, (f1 - f0) / span }'
}

LONG=$((WARMUP + SECS + 5))
FF=(ffmpeg -hide_banner -nostdin -loglevel error -stats_period 0.5 -progress pipe:1 -f x11grab -framerate 30
    -video_size 1920x1080)
echo "1920x1080 at 30 fps, $DISPLAY, ${SECS} s after ${WARMUP} s warm-up; CPU in % of one core"
echo
echo "| capture                    | CPU     | Xvfb    | fps   |"
echo "|----------------------------|---------|---------|-------|"
measure "tally, no cursor" "$WORK/tally.log" -- "$GRAB" --seconds "$LONG" --fps 30
measure "ffmpeg x11grab, no cursor" "$WORK/ff.log" -- "${FF[@]}" -draw_mouse 0 -i "$DISPLAY" \
    -vf scale=1920:1080,format=yuv420p -f null -
measure "tally, cursor" "$WORK/tally-c.log" -- "$GRAB" --seconds "$LONG" --fps 30 --cursor
measure "ffmpeg x11grab, cursor" "$WORK/ff-c.log" -- "${FF[@]}" -draw_mouse 1 -i "$DISPLAY" \
    -vf scale=1920:1080,format=yuv420p -f null -
grep -h 'shm=' "$WORK"/tally*.log 2>/dev/null | head -1 | sed 's/^/tally: /' || true
