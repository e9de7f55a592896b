#!/usr/bin/env bash
# Timestamps past 4 h 39 min (2^24 ms, where RTMP needs extended
# timestamps): a HOURS-long stream (default 5) compressed in time
# (`tally stream --fast`, a small picture so that it encodes at hundreds of
# times real time), published by Tally to its own server and to nginx-rtmp
# at once, recorded by an ffmpeg player on each (`-c copy`). Checks what
# ffmpeg read: timestamps monotonic throughout, the 2^24 ms boundary crossed,
# the last timestamps at the stream's length, audio and video ending within
# one frame of each other. Prints a Markdown table; exits non-zero if a
# check fails. HOURS=0.1 is a quick rehearsal of the script.
set -euo pipefail
cd "$(dirname "$0")/.."
HOURS=${HOURS:-5}
SIZE=${SIZE:-160x90}
# TALLY=path uses that binary (the codecs are optimised in a dev build too).
if [ -z "${TALLY:-}" ]; then
    [ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --quiet
    TALLY=$PWD/target/release/tally
fi
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
source benches/lib/peers.sh
SECS=$(python3 -c "print(int(float('$HOURS') * 3600))")
NGINX_PORT=$(free_port)
start_private_nginx "$WORK/nginx" "$NGINX_PORT"
SERVE_PORT=$(free_port)
"$TALLY" serve --listen "127.0.0.1:$SERVE_PORT" --http none > "$WORK/serve.log" 2>&1 &
wait_port "$SERVE_PORT"

players=()
for server in tally:$SERVE_PORT nginx:$NGINX_PORT; do
    name=${server%%:*} port=${server##*:}
    ffmpeg -hide_banner -nostdin -loglevel error -rw_timeout 10000000 -i "rtmp://127.0.0.1:$port/live/long" \
        -map 0 -c copy -f flv "$WORK/$name.flv" > "$WORK/player-$name.log" 2>&1 &
    players+=("$!")
done
# Both players connected before the first byte is published (nginx keeps a
# player of a stream not yet published; so does tally serve).
for _ in $(seq 200); do
    grep -q "playing" "$WORK/serve.log" && [ "$(ss -Htn state established "( dport = :$NGINX_PORT )" | wc -l)" -ge 1 ] && break
    sleep 0.1
done
start=$(date +%s)
"$TALLY" stream "rtmp://127.0.0.1:$SERVE_PORT/live/long" "rtmp://127.0.0.1:$NGINX_PORT/live/long" \
    --fast --duration "$SECS" --video test --audio sine --size "$SIZE" --video-bitrate 150 --audio-bitrate 64 \
    > "$WORK/publisher.log" 2>&1
took=$(( $(date +%s) - start ))
# The players stay for a next publisher; with nothing more to read, their
# read timeout (10 s) ends them and ffmpeg finishes its file.
for p in "${players[@]}"; do wait "$p" || true; done

echo "A ${HOURS}-hour stream (${SIZE}, 30 fps + 48 kHz AAC) published in ${took} s ($(( SECS / (took > 0 ? took : 1) ))x real time), read by ffmpeg from each server:"
echo
echo "| server | video packets | audio packets | last video | last audio | A/V at the end | non-monotonic | crossed 2^24 ms | largest video step |"
echo "|---|---|---|---|---|---|---|---|---|"
status=0
for name in tally nginx; do
    ffprobe -v error -show_entries packet=codec_type,dts_time -of csv=p=0 "$WORK/$name.flv" > "$WORK/$name.csv" || true
    if ! python3 - "$WORK/$name.csv" "$name" "$SECS" <<'PY'; then status=1; fi
import sys
path, name, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
ts = {"video": [], "audio": []}
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) >= 2 and parts[0] in ts and parts[1] not in ("", "N/A"):
        ts[parts[0]].append(float(parts[1]))
v, a = ts["video"], ts["audio"]
bad = sum(1 for k in ts.values() for x, y in zip(k, k[1:]) if y < x)
crossed = any(x > 16777.215 for x in v) and any(x > 16777.215 for x in a)
end_v, end_a = (v[-1] if v else 0.0), (a[-1] if a else 0.0)
offset = abs(end_v - end_a)
step = max((y - x for x, y in zip(v, v[1:])), default=0.0)
fmt = lambda s: f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{s % 60:06.3f}"
print(f"| {name} | {len(v)} | {len(a)} | {fmt(end_v)} | {fmt(end_a)} | {offset * 1000:.0f} ms | {bad} | {'yes' if crossed else 'NO'} | {step * 1000:.0f} ms |")
ok = bad == 0 and crossed and offset <= 1 / 30 + 1e-6 and end_v >= secs - 1
sys.exit(0 if ok else 1)
PY
done
exit $status
