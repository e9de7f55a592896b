#!/usr/bin/env bash
# CPU cost of going live, in % of one core, measured on this machine in one run:
#   tally stream (test pattern + tone, paced to the wall clock, to a private nginx-rtmp)
#   ffmpeg -re, libx264 ultrafast/zerolatency + aac, same sizes/rates/bitrates, same nginx
# CPU = (user + sys) / wall of the publisher process, from /proc/PID/stat.
# Prints a Markdown table (paste into docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-20}
cargo build --release --locked --quiet
TALLY=$PWD/target/release/tally
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

TICKS=$(getconf CLK_TCK)
# Runs "$@" to the end and prints its CPU % of one core over its wall time.
cpu_of() {
    local t0 t1 pid stat
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 &
    pid=$!
    # Sample the counters just before the process exits (it is our child, not yet reaped).
    while kill -0 "$pid" 2>/dev/null; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null || true)
        [ -n "$stat" ] && last=$stat
        sleep 0.2
    done
    wait "$pid" || true
    t1=$(date +%s.%N)
    awk -v s="$last" -v tk="$TICKS" -v a="$t0" -v b="$t1" 'BEGIN { split(s, f, ") "); split(f[2], x, " "); printf "%.1f", 100 * (x[12] + x[13]) / tk / (b - a) }'
}

echo "| stream | tally (% of one core) | ffmpeg libx264 ultrafast + aac (% of one core) |"
echo "|---|---|---|"
for size in 1280x720 1920x1080; do
    url="rtmp://127.0.0.1:$PORT/live/bench-$size"
    t=$(cpu_of "$TALLY" stream "$url" --video test --audio sine --size "$size" --fps 30 --video-bitrate 2500 --duration "$SECS")
    f=$(cpu_of ffmpeg -hide_banner -nostdin -re -f lavfi -i "testsrc2=size=$size:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -t "$SECS" -c:v libx264 -preset ultrafast -tune zerolatency -b:v 2500k -g 60 -threads 1 -c:a aac -b:a 128k -ac 2 -f flv "$url-ff")
    echo "| ${size}@30, 2500 kbps | $t | $f |"
done
