#!/usr/bin/env bash
# CPU cost of going live, in % of one core, measured on this machine in one
# run, Tally and ffmpeg given the same job:
#   input   the same files, read in real time and looped: Tally's test
#           pattern as a 4 s Y4M clip and a 440 Hz stereo tone as 48 kHz WAV
#   output  H.264 2500 kbit/s (keyframe every 2 s) + AAC 128 kbit/s over
#           RTMP to the same private nginx-rtmp, for SECS seconds
#   tally   tally stream (openh264, one encoder thread; fdk-aac)
#   ffmpeg  -re, libx264 -preset ultrafast -tune zerolatency -threads 1; aac
# CPU = (user + sys) / wall of the whole publisher process, from bash's time.
# Prints a Markdown table (paste into docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-20}
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example raw_h264
TALLY=$PWD/target/release/tally
RAW=$PWD/target/release/examples/raw_h264
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT

MODULE=$(dpkg -L libnginx-mod-rtmp | grep 'ngx_rtmp_module\.so$' | head -1)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/nginx.conf" <<CONF
daemon on; master_process off; worker_processes 1;
pid $WORK/nginx.pid; error_log $WORK/error.log info;
load_module $MODULE;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$PORT; chunk_size 4096; application live { live on; } } }
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log"
for i in $(seq 50); do [ -s "$WORK/nginx.pid" ] && break; sleep 0.1; done

# Runs "$@" to the end and prints its CPU % of one core over its wall time.
cpu_of() {
    local t
    t=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1 )
    awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%.1f", 100 * (a[2] + a[3]) / a[1] }'
}

ffmpeg -hide_banner -loglevel error -f lavfi -i "sine=frequency=440:sample_rate=48000" -ac 2 -t 4 -y "$WORK/tone.wav"
echo "| stream | tally (% of one core) | ffmpeg libx264 ultrafast + aac (% of one core) |"
echo "|---|---|---|"
for size in 1280x720 1920x1080; do
    "$RAW" --y4m "$size" 120 > "$WORK/pattern.y4m"
    url="rtmp://127.0.0.1:$PORT/live/bench-$size"
    t=$(cpu_of "$TALLY" stream "$url" --video "y4m:$WORK/pattern.y4m" --audio "wav:$WORK/tone.wav" --loop \
        --video-bitrate 2500 --audio-bitrate 128 --keyint 2 --duration "$SECS")
    f=$(cpu_of ffmpeg -hide_banner -nostdin -re -stream_loop -1 -i "$WORK/pattern.y4m" -re -stream_loop -1 -i "$WORK/tone.wav" \
        -map 0:v -map 1:a -t "$SECS" -c:v libx264 -preset ultrafast -tune zerolatency -b:v 2500k -g 60 -threads 1 \
        -c:a aac -b:a 128k -ac 2 -f flv "$url-ff")
    echo "| ${size}@30, 2500 kbps | $t | $f |"
done
