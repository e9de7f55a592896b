#!/usr/bin/env bash
# What a rendition costs, measured on this machine in one run. `tally stream
# --profile` goes live to a private nginx-rtmp for SECS seconds with:
#   720p x1     one destination, 1280x720@30 2500 kbit/s           1 encode
#   720p x2     + a destination at its own 1500 kbit/s              2 encodes, same size
#   1080p x1    one destination, 1920x1080@30 6000 kbit/s          1 encode
#   1080p x2    + a destination at its own 4000 kbit/s              2 encodes, same size
#   1080p+720p  + a destination at its own 1280x720 3000 kbit/s     2 encodes + scaling
# The source is one second of testsrc2 under light noise at the profile's
# size, looped (it needs its bitrate without defeating the encoder). CPU is
# the whole process's (user + sys from /proc, % of one core) over the run's
# second half; "encoders" is each rendition's own measure (time spent
# scaling and encoding, `encoder_cpu_percent` in --stats-json), averaged
# over the same lines. Prints a Markdown table (docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib/peers.sh
SECS=${SECS:-20}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --quiet
TALLY=$PWD/target/release/tally
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export HOME=$WORK XDG_CONFIG_HOME=$WORK/config TALLY_SECRET_STORE=file
PORT=$(free_port)
start_private_nginx "$WORK/nginx" "$PORT"
SERVER=rtmp://127.0.0.1:$PORT/live

for size in 1280x720 1920x1080; do
    ffmpeg -hide_banner -nostdin -v error -f lavfi -i "testsrc2=size=$size:rate=30,noise=alls=6:allf=t+u" \
        -t 1 -pix_fmt yuv420p -f yuv4mpegpipe -y "$WORK/clip-$size.y4m"
done

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run NAME SIZE KBPS [SECOND-DESTINATION-OPTIONS...]
run() {
    local name=$1 size=$2 kbps=$3; shift 3
    rm -rf "$XDG_CONFIG_HOME"
    local key; key=$(echo "$name" | tr -c 'a-z0-9\n' '-')
    echo "$key-a" | "$TALLY" profiles add bench --url "$SERVER" --dest a --key-stdin --size "$size" --video-bitrate "$kbps" >/dev/null 2>&1
    if [ $# -gt 0 ]; then
        echo "$key-b" | "$TALLY" profiles add-destination bench --url "$SERVER" --dest b --key-stdin "$@" >/dev/null 2>&1
    fi
    "$TALLY" stream --profile bench --video "y4m:$WORK/clip-$size.y4m" --loop --audio sine \
        --duration "$SECS" --stats-json >"$WORK/stats.json" 2>"$WORK/log" &
    local pid=$! half=$((SECS / 2))
    sleep "$half"
    local t0; t0=$(ticks "$pid")
    sleep $((SECS - half - 1))
    local t1; t1=$(ticks "$pid")
    wait "$pid"
    python3 - "$WORK/stats.json" "$name" "$t0" "$t1" $((SECS - half - 1)) <<'PY'
import json, sys
path, name, t0, t1, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
lines = [json.loads(l) for l in open(path) if l.startswith('{')]
half = lines[len(lines) // 2:-1] or lines
n = max(len(s["renditions"]) for s in half)
per = {}
for s in half:
    for r in s["renditions"]:
        per.setdefault((r["id"], r["width"], r["height"], r["target_kbps"]), []).append((r["encoder_cpu_percent"], r["encoded_kbps"], r["fps"]))
cells = []
for (rid, w, h, kbps), v in sorted(per.items()):
    cpu = sum(x[0] for x in v) / len(v)
    out = sum(x[1] for x in v) / len(v)
    fps = sum(x[2] for x in v) / len(v)
    cells.append(f"{rid} {w}x{h} {kbps}k: {cpu:.1f} % ({out:.0f} kbit/s, {fps:.0f} fps)")
process = (t1 - t0) / secs  # clock ticks are 1/100 s: ticks per second = % of a core
print(f"| {name} | {n} | {process:.0f} % | {'; '.join(cells)} |")
PY
}

echo "| run | encodes | process CPU | each rendition's encoder CPU (coded kbit/s, fps) |"
echo "|---|---|---|---|"
run "720p x1" 1280x720 2500
run "720p x2" 1280x720 2500 --video-bitrate 1500
run "1080p x1" 1920x1080 6000
run "1080p x2" 1920x1080 6000 --video-bitrate 4000
run "1080p+720p" 1920x1080 6000 --size 1280x720 --video-bitrate 3000
cores=$(nproc)
echo
echo "Encoder CPU budget on this machine ($cores cores): $((cores * 75)) % of one core (75 % of every core)."
