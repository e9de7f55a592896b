#!/usr/bin/env bash
# The app measured like the engine, in one run on this machine, the release
# binary under Xvfb (Mesa's llvmpipe renders: CPU and RSS here are an upper
# bound of what a real GPU costs):
#   start-up   process launch → the first frame drawn (the app logs it)
#   idle       the test pattern previewed, nothing going out: CPU % of one
#              core and RSS over SECS seconds, from /proc/PID
#   rehearsal  Ctrl+R (xdotool): live to the built-in server at 1280x720,
#              the viewer preview decoding what the server relays; CPU, RSS
#   cli        the same stream without a window: `tally serve` +
#              `tally stream --video test` to it; CPU of both processes
#   latency    the viewer preview's glass-to-glass figure, from the app's
#              window (read by the egui test in tests/app/flows.rs; here: the log)
# Prints a Markdown table (paste into docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-20}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --quiet
# TALLY=path/to/tally measures another build (e.g. the one before a change) in the same run.
TALLY=${TALLY:-$PWD/target/release/tally}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export HOME=$WORK XDG_CONFIG_HOME=$WORK/config

# CPU % of one core of PIDs over SECS, and their summed RSS at the end (MiB).
cat > "$WORK/measure.sh" <<'EOF'
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
measure() {
    local t0=0 t1=0 p r=0
    for p in "$@"; do t0=$((t0 + $(ticks "$p"))); done
    sleep "$SECS"
    for p in "$@"; do t1=$((t1 + $(ticks "$p"))); r=$((r + $(rss "$p"))); done
    awk -v a="$t0" -v b="$t1" -v s="$SECS" -v r="$r" 'BEGIN { printf "%.1f %.0f\n", (b - a) / s, r / 1024 }'
}
# Per thread of PID over 3 s, % of one core: "llvmpipe own name=% name=% ..."
# (llvmpipe: Mesa's rasterizer threads summed; own: all the others; then each
# of the others by name, threads of one name summed).
threads() {
    local a b
    a=$(for t in /proc/$1/task/*; do printf '%s %s\n' "$(tr ' ' _ < "$t/comm")" "$(awk '{ print $14 + $15 }' "$t/stat")"; done)
    sleep 3
    b=$(for t in /proc/$1/task/*; do printf '%s %s\n' "$(tr ' ' _ < "$t/comm")" "$(awk '{ print $14 + $15 }' "$t/stat")"; done)
    { echo "$a" | sed 's/^/a /'; echo "$b" | sed 's/^/b /'; } | awk '
        { v[$2] += ($1 == "b" ? $3 : -$3) }
        END { for (n in v) { p = v[n] / 3; if (n ~ /^llvmpipe/) l += p; else { o += p; if (p >= 0.5) s = s sprintf(" %s=%.0f", n, p) } }
              printf "%.0f %.0f%s\n", l, o, s }'
}
EOF
# shellcheck source=/dev/null
. "$WORK/measure.sh"

# The app under its own X server: start-up, idle, rehearsing.
cat > "$WORK/app.sh" <<'EOF'
set -euo pipefail
. "$WORK/measure.sh"
started=$(date +%s%N)
"$TALLY" > "$WORK/app.log" 2>&1 &
pid=$!
for _ in $(seq 400); do grep -q "first frame drawn" "$WORK/app.log" && break; sleep 0.025; done
now=$(date +%s%N)
own=$(grep -o 'first frame drawn [0-9]* ms' "$WORK/app.log" | grep -o '[0-9]*' | head -1)
echo "start-up: $(( (now - started) / 1000000 )) ms from launch to the log line ($own ms inside the app)" >&2
sleep 3 # the preview settles before the idle window
read -r idle_cpu idle_rss < <(measure "$pid")
read -r idle_llvm idle_own idle_threads < <(threads "$pid")
echo "idle, per thread (% of one core): llvmpipe $idle_llvm, Tally's own $idle_own:$idle_threads" >&2
wid=$(xdotool search --name '^Tally' | head -1)
xdotool windowfocus --sync "$wid"
xdotool key --clearmodifiers ctrl+r
sleep 5 # the rehearsal starts, the viewer joins
read -r live_cpu live_rss < <(measure "$pid")
read -r live_llvm live_own live_threads < <(threads "$pid")
echo "rehearsing, per thread (% of one core): llvmpipe $live_llvm, Tally's own $live_own:$live_threads" >&2
grep -o 'glass-to-glass [0-9]* ms' "$WORK/app.log" | tail -1 >&2 || true
import -window "$wid" "$WORK/rehearsal.png" || true
kill "$pid"; wait "$pid" 2>/dev/null || true
echo "$idle_cpu $idle_rss $live_cpu $live_rss $idle_llvm $idle_own $live_llvm $live_own"
EOF
export TALLY WORK SECS
read -r idle_cpu idle_rss live_cpu live_rss idle_llvm idle_own live_llvm live_own < <(xvfb-run -a -s "-screen 0 1280x860x24" bash "$WORK/app.sh")

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TALLY" serve --listen "127.0.0.1:$PORT" --http none > "$WORK/serve.log" 2>&1 &
SERVE=$!
sleep 1
"$TALLY" stream "rtmp://127.0.0.1:$PORT/live/rehearsal" --video test --audio silence --size 1280x720 > "$WORK/stream.log" 2>&1 &
STREAM=$!
sleep 5
read -r cli_cpu cli_rss < <(measure "$SERVE" "$STREAM")
kill "$STREAM" "$SERVE"; wait 2>/dev/null || true

echo "| run (release, 1280x720@30, 2500 kbit/s) | CPU (% of one core) | RSS (MiB) | llvmpipe threads / Tally's own (% CPU, 3 s) |"
echo "|---|---|---|---|"
echo "| app, idle, previewing the test pattern | $idle_cpu | $idle_rss | $idle_llvm / $idle_own |"
echo "| app, rehearsing (live to its server + viewer preview) | $live_cpu | $live_rss | $live_llvm / $live_own |"
echo "| CLI: tally serve + tally stream, same stream, no window, no viewer | $cli_cpu | $cli_rss | 0 / $cli_cpu |"
