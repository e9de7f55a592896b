#!/usr/bin/env bash
# CPU cost of a 1080p30 MJPEG camera into a 720p30 stream, Tally and ffmpeg
# reading the same device in the same run.
#
#   device  tests/fake_v4l2 (the V4L2 driver the camera tests use) offering
#           MJPG 1920x1080@30 in a private mount namespace; its clip is 2 s
#           of a picture turned into JPEGs by ffmpeg (-q:v 2), looped:
#             pattern  Tally's test pattern (flat bars: cheap to decode)
#             busy     ffmpeg's testsrc2 under noise (hard: every block detailed)
#   capture+conversion  what it costs to turn the camera's JPEGs into 720p
#           I420 frames for the encoder:
#             tally   the tally-camera thread of `tally stream` (dequeue, JPEG
#                     decode, BT.709 conversion, scale to 1280x720), from
#                     /proc/PID/task/TID/stat over the middle of the run
#             ffmpeg  ffmpeg -f v4l2 ... -vf scale=1280:720,format=yuv420p
#                     -f null (its whole process: decode, scale)
#   whole job  the publisher process, to a private nginx-rtmp, 2500 kbit/s
#             tally   tally stream (openh264, AAC of silence)
#             ffmpeg  libx264 -preset ultrafast -tune zerolatency -threads 1,
#                     AAC of silence
# CPU in % of one core. Prints a Markdown table for docs/PERFORMANCE.md.
# Needs root (the mount namespace), cc, nginx with the RTMP module, ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-20}
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example raw_h264
TALLY=$PWD/target/release/tally
RAW=$PWD/target/release/examples/raw_h264
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT
TICK=$(getconf CLK_TCK)

cc -Wall -Wextra -Werror -shared -fPIC -O2 -o "$WORK/libfakev4l2.so" tests/fake_v4l2/fake_v4l2.c -ldl -lpthread

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

# The clips: 60 frames of 1080p, as JPEGs full-range BT.601 (what JFIF means).
"$RAW" --y4m 1920x1080 60 > "$WORK/pattern.y4m"
TO_JPEG="scale=in_color_matrix=bt709:in_range=tv:out_color_matrix=bt601:out_range=pc,format=yuvj420p"
ffmpeg -hide_banner -loglevel error -y -f yuv4mpegpipe -i "$WORK/pattern.y4m" -vf "$TO_JPEG" -c:v mjpeg -q:v 2 -f mjpeg "$WORK/pattern.mjpeg"
ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30" -frames:v 60 \
    -vf "noise=alls=12:allf=t,format=yuvj420p" -c:v mjpeg -q:v 2 -f mjpeg "$WORK/busy.mjpeg"
rm -f "$WORK/pattern.y4m"

# Runs "$@" where the camera is plugged in (see tests/common/camera.rs).
in_camera_ns() {
    local up
    up=$(mktemp -d -p "$WORK")
    mkdir -p "$up/u" "$up/w"
    exec unshare --mount --fork --kill-child sh -c \
        "mount --make-rprivate / && mount -t overlay bench-dev -o lowerdir=/dev,upperdir=$up/u,workdir=$up/w /dev && : > /dev/video0 && export LD_PRELOAD=\"\$0\" && exec \"\$@\"" \
        "$WORK/libfakev4l2.so" "$@"
}

# CPU ticks (user + sys) of process $1, or of its threads named $2.
ticks() {
    local pid=$1 name=${2:-} sum=0 t comm stat
    if [ -z "$name" ]; then
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo 0; return; }
        echo "$stat" | awk '{ sub(/.*\) /, ""); print $12 + $13 }'
        return
    fi
    for t in /proc/"$pid"/task/*; do
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        [ "$comm" = "$name" ] || continue
        stat=$(cat "$t/stat" 2>/dev/null) || continue
        sum=$((sum + $(echo "$stat" | awk '{ sub(/.*\) /, ""); print $12 + $13 }')))
    done
    echo "$sum"
}

# The process inside the namespace: unshare's child.
inner_pid() {
    local i
    for i in $(seq 100); do
        local c
        # Until the background shell has become unshare (it forks mktemp first).
        [ "$(cat "/proc/$1/comm" 2>/dev/null)" = unshare ] || { sleep 0.05; continue; }
        c=$(cat "/proc/$1/task/$1/children" 2>/dev/null | awk '{print $1}')
        [ -n "$c" ] && { echo "$c"; return; }
        sleep 0.05
    done
}

# Starts "$@" in the namespace, measures process (or thread $NAME) CPU from
# 3 s in to 3 s before its end, prints % of one core.
measure() {
    local name=$1; shift
    in_camera_ns "$@" >/dev/null 2>"$WORK/last.log" &
    local outer=$! pid a b
    pid=$(inner_pid $outer)
    sleep 3
    a=$(ticks "$pid" "$name"); [ -n "${BENCH_DEBUG:-}" ] && echo "pid=$pid comm=$(cat /proc/$pid/comm 2>&1) a=$a" >&2
    sleep $((SECS - 6))
    b=$(ticks "$pid" "$name")
    wait $outer || { echo "failed: $*" >&2; tail -5 "$WORK/last.log" >&2; }
    awk -v a="$a" -v b="$b" -v t="$TICK" -v s=$((SECS - 6)) 'BEGIN { printf "%.1f", 100 * (b - a) / t / s }'
}

echo "| 1080p30 MJPEG camera -> 720p30 | tally | ffmpeg |"
echo "|---|---|---|"
for clip in pattern busy; do
    export FAKE_V4L2_MODES="MJPG:1920x1080:30:$WORK/$clip.mjpeg" FAKE_V4L2_CARD="Bench Camera"
    url="rtmp://127.0.0.1:$PORT/live/camera-$clip"
    tc=$(measure tally-camera "$TALLY" stream "$url-conv" --video camera:0 --audio silence --size 1280x720 --fps 30 --duration "$SECS")
    fc=$(measure "" ffmpeg -hide_banner -nostdin -loglevel error -f v4l2 -input_format mjpeg -video_size 1920x1080 -framerate 30 \
        -i /dev/video0 -t "$SECS" -vf scale=1280:720:flags=bilinear,format=yuv420p -f null -)
    tw=$(measure "" "$TALLY" stream "$url" --video camera:0 --audio silence --size 1280x720 --fps 30 --duration "$SECS")
    fw=$(measure "" ffmpeg -hide_banner -nostdin -loglevel error -f v4l2 -input_format mjpeg -video_size 1920x1080 -framerate 30 \
        -i /dev/video0 -f lavfi -i anullsrc=r=48000:cl=stereo -t "$SECS" -vf scale=1280:720:flags=bilinear \
        -c:v libx264 -preset ultrafast -tune zerolatency -threads 1 -b:v 2500k -g 60 -c:a aac -b:a 128k -f flv "$url-ff")
    echo "| $clip: capture + conversion (% of one core) | $tc | $fc |"
    echo "| $clip: whole job, live to nginx-rtmp (% of one core) | $tw | $fw |"
done
