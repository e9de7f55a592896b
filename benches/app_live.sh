#!/usr/bin/env bash
# The app live, measured beside the CLI doing the same job, and its frame
# times through a network stall and a source failure. The release binary
# under Xvfb (llvmpipe renders: CPU and RSS are an upper bound of a GPU's),
# a private nginx-rtmp on loopback, a profile made with `tally profiles add`:
#   live SIZE     Ctrl+L with the profile at 1280x720 and 1920x1080: CPU % of
#                 one core and RSS (/proc) over SECS, and `tally stream
#                 --profile` (no window) over the same SECS
#   stall         live, nginx stopped (SIGSTOP) for 10 s, then continued
#   failure       live from a Y4M broken at frame 150: the source fails, a
#                 slate goes out
# Frame times come from the app's own log (RUST_LOG=info,tally::ui=debug:
# "frame times over 1.0 s: N frames, longest X ms, K over 50 ms").
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-15}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --quiet
TALLY=$PWD/target/release/tally
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export HOME=$WORK XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data TALLY WORK SECS
export PORT; PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MODULE=$(dpkg -L libnginx-mod-rtmp | grep '\.so$' | head -1)
mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx/nginx.conf" <<CONF
load_module $MODULE;
daemon off; master_process off; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events {}
rtmp { server { listen 127.0.0.1:$PORT; application live { live on; } } }
CONF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
export NGINX=$!
ffmpeg -hide_banner -v error -f lavfi -i testsrc2=size=1280x720:rate=30 -frames:v 400 -pix_fmt yuv420p -f yuv4mpegpipe -y "$WORK/clip.y4m"
python3 - "$WORK/clip.y4m" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
h = b.index(b'\n') + 1
at = h + 150 * (6 + 1280 * 720 * 3 // 2)
assert b[at:at + 5] == b'FRAME'
b[at:at + 5] = b'XXXXX'
open(p, 'wb').write(b)
PY
# One profile at a time: the window goes live with the one it finds.
mk() { rm -f "$XDG_CONFIG_HOME/tally/profiles.toml" "$XDG_CONFIG_HOME/tally/last-profile"; echo -n "k-$1" | "$TALLY" profiles add "$1" --url "rtmp://127.0.0.1:$PORT/live" --key-stdin --replace "${@:2}" >/dev/null 2>&1; }

cat > "$WORK/measure.sh" <<'M'
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# The resident pages of Mesa's libLLVM (llvmpipe's shader compiler: only
# there because Xvfb has no GPU), kB.
llvm() { awk '/^[0-9a-f]+-/ { n = $6 } /^Rss:/ && n ~ /libLLVM/ { r += $2 } END { print r + 0 }' "/proc/$1/smaps"; }
# CPU % of one core over SECS, RSS MiB, RSS without Mesa's libLLVM MiB
measure() {
    local t0 t1 r l
    t0=$(ticks "$1"); sleep "$SECS"; t1=$(ticks "$1"); r=$(rss "$1"); l=$(llvm "$1")
    awk -v a="$t0" -v b="$t1" -v s="$SECS" -v r="$r" -v l="$l" 'BEGIN { printf "%.0f %.0f %.0f\n", (b - a) / s, r / 1024, (r - l) / 1024 }'
}
# Tally's own threads (everything but Mesa's llvmpipe) over 3 s, % of one core.
own() {
    local a b
    a=$(for t in /proc/$1/task/*; do n=$(cat "$t/comm"); case $n in llvmpipe*) ;; *) awk '{print $14+$15}' "$t/stat";; esac; done | paste -sd+ | bc)
    sleep 3
    b=$(for t in /proc/$1/task/*; do n=$(cat "$t/comm"); case $n in llvmpipe*) ;; *) awk '{print $14+$15}' "$t/stat";; esac; done | paste -sd+ | bc)
    echo $(( (b - a) / 3 ))
}
M
cat > "$WORK/app.sh" <<'A'
set -euo pipefail
. "$WORK/measure.sh"
for _ in $(seq 100); do xwininfo -root >/dev/null 2>&1 && break; sleep 0.1; done
# $1: profile, $2: what to do while live (live|stall|failure)
: > "$WORK/app-$2.log"; RUST_LOG=info,tally::ui=debug "$TALLY" >> "$WORK/app-$2.log" 2>&1 &
app=$!
wid=$(xdotool search --sync --onlyvisible --name '^Tally' | head -1)
for _ in $(seq 50); do xdotool windowfocus --sync "$wid" 2>/dev/null && break; sleep 0.1; done
sleep 3
read -r idle_cpu idle_rss idle_own < <(measure "$app")
xdotool windowfocus --sync "$wid"; xdotool key --clearmodifiers ctrl+l
for _ in $(seq 100); do grep -q "publishing" "$WORK/app-$2.log" && break; sleep 0.1; done
echo "mark live $(date +%s.%N)" >> "$WORK/app-$2.log"
case $2 in
live)
    sleep 3
    read -r live_cpu live_rss live_own < <(measure "$app")
    echo "$idle_cpu $idle_rss $idle_own $live_cpu $live_rss $live_own $(own "$app")" ;;
stall)
    sleep 4; echo "mark stall $(date +%s.%N)" >> "$WORK/app-$2.log"
    kill -STOP "$NGINX"; sleep 10; kill -CONT "$NGINX"
    echo "mark resumed $(date +%s.%N)" >> "$WORK/app-$2.log"; sleep 8 ;;
failure)
    sleep 12; import -window "$wid" "$WORK/failed.png" ;;
esac
xdotool windowfocus --sync "$wid"; xdotool key --clearmodifiers ctrl+e
sleep 2
kill "$app"; wait "$app" 2>/dev/null || true
A
run_app() { xvfb-run -a -s "-screen 0 1280x860x24" bash "$WORK/app.sh" "$@"; }
cli() {
    "$TALLY" stream --profile "$1" > "$WORK/cli.log" 2>&1 < /dev/null &
    local p=$!
    sleep 4
    . "$WORK/measure.sh"; measure "$p"
    kill -INT "$p"; wait "$p" 2>/dev/null || true
}
if [ -z "${ONLY_FRAMES:-}" ]; then
echo "| run (release, \`--renderer ${TALLY_RENDERER:-glow}\`, test pattern + tone, 2500 kbit/s to nginx-rtmp) | CPU (% of one core) | RSS (MiB) | RSS without Mesa's libLLVM (MiB) | Tally's own threads (% CPU) |"
echo "|---|---|---|---|---|"
for size in 1280x720 1920x1080; do
    mk "live-$size" --video test --audio sine --size "$size" --video-bitrate 2500
    read -r ic ir io lc lr lo own < <(run_app "live-$size" live)
    sleep 3 # the app's stream unpublished before the CLI publishes the same one
    read -r cc cr co < <(cli "live-$size")
    echo "| app idle, previewing, $size | $ic | $ir | $io | |"
    echo "| app live, $size | $lc | $lr | $lo | $own |"
    echo "| \`tally stream --profile\`, $size (no window) | $cc | $cr | $co | $cc |"
done
fi
frames() {
    # longest frame and frames over 50 ms in the log between two marks
    awk -v from="$2" -v to="${3:-}" '
        /^mark / { phase = $2 }
        /frame times over/ && (phase == from || (to != "" && phase == to)) {
            for (i = 1; i <= NF; i++) { if ($i == "longest") { v = $(i+1) + 0; if (v > max) max = v }; if ($i == "over") slow += $(i-1) }
            n++ }
        END { printf "%d windows, longest %.1f ms, %d over 50 ms\n", n, max, slow }' "$1"
}
mk stall --video test --audio sine
run_app stall stall
echo
echo "stall: live before: $(frames "$WORK/app-stall.log" live) · nginx stopped: $(frames "$WORK/app-stall.log" stall) · after: $(frames "$WORK/app-stall.log" resumed)"
grep -E "reconnect|stall|Stall" "$WORK/app-stall.log" | head -3 || true
mk failure --video "y4m:$WORK/clip.y4m" --audio sine
run_app failure failure
echo "failure: $(frames "$WORK/app-failure.log" live)"
grep -E "video source failed" "$WORK/app-failure.log" | head -1 || true
cp "$WORK/failed.png" "${SHOT:-/tmp/app-source-failed.png}" 2>/dev/null || true
