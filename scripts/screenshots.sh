#!/usr/bin/env bash
# The README's screenshots, taken of the release binary started the way
# `make run` starts it (./target/release/tally), under Xvfb, driven with
# xdotool as a person would use it, captured with `import`:
#   docs/app-idle.png       a profile selected, the test pattern previewed, the tone on the meters
#   docs/app-live.png       Ctrl+L: live to a private nginx-rtmp, two destinations, one at its
#                           own size (preview and meters moving, a row per destination's encode)
#   docs/app-rehearsal.png  Ctrl+R: rehearsing on the built-in server, the viewer preview showing it
#   docs/app-editor.png     the profile editor (Edit profile)
#   docs/app-first-run.png  no profile yet: what to do
# Look at every one before committing it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --quiet
TALLY=$PWD/target/release/tally
OUT=$PWD/docs
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export HOME=$WORK XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data TALLY WORK OUT

# A private nginx-rtmp to go live to.
export PORT; PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MODULE=$(dpkg -L libnginx-mod-rtmp | grep '\.so$' | head -1)
mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx/nginx.conf" <<CONF
load_module $MODULE;
daemon off; master_process off; pid $WORK/nginx.pid; error_log $WORK/nginx/error.log;
events {}
rtmp { server { listen 127.0.0.1:$PORT; application live { live on; } } }
CONF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &

cat > "$WORK/shots.sh" <<'SCRIPT'
set -euo pipefail
for _ in $(seq 100); do xwininfo -root >/dev/null 2>&1 && break; sleep 0.1; done
start() {
    "$TALLY" > "$WORK/app.log" 2>&1 &
    app=$!
    for _ in $(seq 200); do grep -q "first frame drawn" "$WORK/app.log" && break; sleep 0.05; done
    wid=$(xdotool search --sync --onlyvisible --name '^Tally' | head -1)
    for _ in $(seq 50); do xdotool windowfocus --sync "$wid" 2>/dev/null && break; sleep 0.1; done
}
# The test pattern flashes white for a frame each second (the A/V sync
# marker): a shot that caught the flash in the preview is taken again.
shot() {
    sleep "$2"
    for _ in 1 2 3 4 5; do
        import -window "$wid" "$OUT/$1"
        convert "$OUT/$1" -crop 1x1+300+200 txt:- | grep -q '#FFFFFF' || break
        sleep 0.2
    done
    echo "took $1" >&2
}
key() { xdotool windowfocus --sync "$wid"; xdotool key --clearmodifiers "$1"; }

# First run: no profile.
start
shot app-first-run.png 3
kill "$app"; wait "$app" 2>/dev/null || true

# A profile to nginx-rtmp, the test pattern and the tone.
echo -n "screenshot-key" | "$TALLY" profiles add Studio --url "rtmp://127.0.0.1:$PORT/live" --key-stdin --video test --audio sine >/dev/null
# A second destination at its own size and bitrate: two encodes while live.
echo -n "screenshot-small" | "$TALLY" profiles add-destination Studio --url "rtmp://127.0.0.1:$PORT/live" --dest small \
    --key-stdin --size 854x480 --video-bitrate 1200 >/dev/null
start
shot app-idle.png 3
key ctrl+l
shot app-live.png 6
key ctrl+e
sleep 2
key ctrl+r
shot app-rehearsal.png 7
key ctrl+e
sleep 2
# The editor: "Edit profile" (no shortcut): clicked where it is drawn.
eval "$(xdotool getwindowgeometry --shell "$wid")"
xdotool mousemove --window "$wid" 150 57 click 1
shot app-editor.png 2
kill "$app"; wait "$app" 2>/dev/null || true
SCRIPT
xvfb-run -a -s "-screen 0 1280x860x24" bash "$WORK/shots.sh"
grep -E "nginx|error" "$WORK/nginx/error.log" | tail -3 || true
