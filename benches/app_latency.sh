#!/usr/bin/env bash
# Glass-to-glass on loopback, timed on the screen: the app's preview, its
# viewer preview and ffplay, all in one X server (Xvfb 1600x1000), recorded
# with ffmpeg's x11grab at 60 fps. The test pattern turns every pixel white
# for one frame on each whole second; the onset of that flash is found in a
# dark patch (the bottom-right black of the bars) of each picture on the
# screen, from showinfo's mean luma of the cropped patch, and the delays are
# paired per flash:
#   A  the app live to a private nginx-rtmp (Ctrl+L), watched by
#      `ffplay -fflags nobuffer -flags low_delay` and by plain `ffplay`
#   B  the app rehearsing (Ctrl+R: live to its built-in server + the viewer
#      preview in the window), watched by low-delay ffplay through the same
#      built-in server
# Each figure includes the app's repaint (llvmpipe: ~20 frames a second) and
# the grab's 60 fps: ±1 repaint interval per flash; the medians are the
# figures. Screenshots of each phase go to $WORK (KEEP=1 keeps it).
# Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-15}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --quiet
TALLY=$PWD/target/release/tally
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
export HOME=$WORK XDG_CONFIG_HOME=$WORK/config XDG_DATA_HOME=$WORK/data TALLY WORK SECS
export SDL_AUDIODRIVER=dummy
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
echo -n "k-lat" | "$TALLY" profiles add lat --url "rtmp://127.0.0.1:$PORT/live" --key-stdin --replace \
    --video test --audio sine --size 1280x720 --video-bitrate 2500 >/dev/null 2>&1

cat > "$WORK/x.sh" <<'X'
set -euo pipefail
for _ in $(seq 100); do xwininfo -root >/dev/null 2>&1 && break; sleep 0.1; done
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
RUST_LOG=info "$TALLY" > "$WORK/app.log" 2>&1 &
app=$!; pids+=("$app")
wid=$(xdotool search --sync --onlyvisible --name '^Tally' | head -1)
for _ in $(seq 50); do xdotool windowfocus --sync "$wid" 2>/dev/null && break; sleep 0.1; done
sleep 2
key() { xdotool windowfocus --sync "$wid"; xdotool key --clearmodifiers "$1"; }
ffp() { # title left top url [flags...]
    local t=$1 l=$2 tp=$3 u=$4; shift 4
    ffplay -hide_banner -loglevel warning -noborder -x 480 -y 270 -left "$l" -top "$tp" -window_title "$t" "$@" "$u" > "$WORK/$t.log" 2>&1 &
    pids+=("$!")
}
grab() { # name: SECS of the screen, mean luma of each patch per grabbed frame
    ffmpeg -hide_banner -nostats -loglevel info -f x11grab -framerate 60 -video_size 1600x1000 -i "$DISPLAY" -t "$SECS" \
        -filter_complex "$REGIONS" -f null - > "$WORK/grab-$1.log" 2>&1 || true
}
# Patches (w:h:x:y) in the bars' bottom-right black, for a picture at X,Y of W x H.
patch() { awk -v x="$1" -v y="$2" -v w="$3" -v h="$4" 'BEGIN { printf "%d:%d:%d:%d", w*0.17, h*0.15, x+w*0.62, y+h*0.80 }'; }
chain() { echo "[$1]crop=$(patch $2 $3 $4 $5),format=gray,showinfo@$1"; }
PREVIEW="8 70 614 344" VIEWER="729 206 360 202" FF1="1110 10 480 270" FF2="1110 300 480 270"

# A: live to nginx-rtmp, two ffplays.
key ctrl+l
for _ in $(seq 100); do grep -q publishing "$WORK/app.log" && break; sleep 0.1; done
URL="rtmp://127.0.0.1:$PORT/live/k-lat"
ffp ffplay-lowdelay 1110 10 "$URL" -fflags nobuffer -flags low_delay
ffp ffplay-plain 1110 300 "$URL"
sleep 8
import -window root "$WORK/phase-a.png"
REGIONS="[0]split=3[p][f][g];$(chain p $PREVIEW),nullsink;$(chain f $FF1),nullsink;$(chain g $FF2),nullsink"
grab a
import -window root "$WORK/phase-a2.png"
key ctrl+e
kill "${pids[@]:1}" 2>/dev/null || true
sleep 3

# B: rehearsing, the viewer preview and low-delay ffplay through the built-in server.
: > "$WORK/app.log.b"; tail -n0 -f "$WORK/app.log" > "$WORK/app.log.b" & pids+=("$!")
key ctrl+r
for _ in $(seq 100); do grep -q publishing "$WORK/app.log.b" && break; sleep 0.1; done
ffp ffplay-rehearsal 1110 10 "rtmp://127.0.0.1:1935/live/rehearsal" -fflags nobuffer -flags low_delay
sleep 8
import -window root "$WORK/phase-b.png"
REGIONS="[0]split=3[p][v][f];$(chain p $PREVIEW),nullsink;$(chain v $VIEWER),nullsink;$(chain f $FF1),nullsink"
grab b
import -window root "$WORK/phase-b2.png"
key ctrl+e
sleep 1
X
xvfb-run -a -s "-screen 0 1600x1000x24" bash "$WORK/x.sh"

python3 - "$WORK" <<'PY'
import re, sys, statistics as st
work = sys.argv[1]
def onsets(log):
    """Per showinfo instance: the times its patch turned bright (a flash starts)."""
    series = {}
    for line in open(log, errors='replace'):
        m = re.search(r'\[(?:showinfo@)?(\w+) @ [^\]]*\] n:\s*\d+ pts:\s*\d+ pts_time:([\d.]+).*?mean:\[(\d+)', line)
        if m:
            series.setdefault(m.group(1), []).append((float(m.group(2)), int(m.group(3))))
    out = {}
    for name, s in series.items():
        lo = st.median(v for _, v in s)
        hi = max(v for _, v in s)
        thr = (lo + hi) / 2
        ts, prev = [], False
        for t, v in s:
            bright = hi - lo > 60 and v > thr
            if bright and not prev:
                ts.append(t)
            prev = bright
        out[name] = (ts, len(s), lo, hi)
    return out
def pair(ref, other):
    """Signed delay of each flash in `other` from the nearest flash of `ref` (within ±0.5 s:
    flashes are 1 s apart, so a delay of more than half a second shows modulo 1 s; the
    burned-in frame counters in the screenshots give the whole seconds)."""
    d = []
    for t in other:
        near = min(ref, key=lambda r: abs(r - t), default=None)
        if near is not None and abs(t - near) < 0.5:
            d.append((t - near) * 1000)
    return d
def fmt(d):
    if not d:
        return "—", "0"
    return f"{st.median(d):.0f} ({min(d):.0f}–{max(d):.0f})", str(len(d))
rows = []
for phase, names in (("a", [("p", "f", "A: low-delay ffplay (nginx-rtmp) minus the app's preview"), ("p", "g", "A: plain ffplay (nginx-rtmp) minus the app's preview (mod 1 s)"), ("f", "g", "A: plain ffplay minus low-delay ffplay (mod 1 s)")]),
                     ("b", [("p", "v", "B: the app's viewer preview minus its preview (rehearsing)"), ("p", "f", "B: low-delay ffplay (built-in server) minus the app's preview"), ("f", "v", "B: the app's viewer preview minus low-delay ffplay (same server)")])):
    o = onsets(f"{work}/grab-{phase}.log")
    for k, (ts, n, lo, hi) in sorted(o.items()):
        print(f"phase {phase} {k}: {n} grabbed frames over the run, patch luma {lo}..{hi}, {len(ts)} flashes seen", file=sys.stderr)
    for r, k, label in names:
        med, n = fmt(pair(o.get(r, ([],))[0], o.get(k, ([],))[0]))
        rows.append(f"| {label} | {med} | {n} |")
print("| flash onset on the screen, one picture minus another | ms: median (min–max) | flashes paired |")
print("|---|---|---|")
print("\n".join(rows))
PY
cp "$WORK"/phase-*.png "${SHOTS:-/tmp}/" 2>/dev/null || true
