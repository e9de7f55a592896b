#!/usr/bin/env bash
# The package's checks, run by `make test` after `make package`:
#   1. desktop-file-validate and appstreamcli validate on what the package ships;
#   2. lintian: no error, and no warning that packaging/README.md does not explain;
#   3. the install test: the .deb installed with apt-get into a throwaway root
#      (a copy-on-write overlay of this system in a private mount namespace,
#      so the machine itself is never changed), then, from the installed
#      paths: tally --version, tally devices, the shell completions, the
#      menu entry's Exec line opening the window under Xvfb (its WM_CLASS
#      must match the entry's StartupWMClass, or desktops cannot tell the
#      window belongs to it), a screenshot, and apt-get purge removing it all.
# Usage: packaging/check.sh target/debian/tally_*.deb [SCREENSHOT.png]
# Needs root (mount namespaces, chroot); re-runs itself with sudo otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=${1:?usage: packaging/check.sh PACKAGE.deb [SCREENSHOT.png]}
shot_out=${2:-target/packaging/installed-app.png}
app_id=io.github.tallycast.Tally
deb=$(realpath "$deb")
shot_out=$(realpath -m "$shot_out")

if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "check.sh: the install test needs root (or sudo)" >&2; exit 1; }
    exec sudo -E "$0" "$deb" "$shot_out"
fi

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
step() { echo; echo "== $*"; }

contents=$(mktemp -d /tmp/tally-deb.XXXXXX)
# The overlay's layers live in a tmpfs mounted on $work inside the namespace
# (an upper layer may not sit inside the lower one, here the root); what
# the test writes out goes through $out, a plain directory.
work=$(mktemp -d /tmp/tally-root.XXXXXX)
out=$(mktemp -d /tmp/tally-out.XXXXXX)
trap 'rm -rf "$contents" "$out"; rmdir "$work" 2>/dev/null || true' EXIT
dpkg-deb -x "$deb" "$contents"

step "desktop entry and AppStream metadata"
if desktop-file-validate "$contents/usr/share/applications/$app_id.desktop"; then
    pass "desktop-file-validate $app_id.desktop"
else
    fail "desktop-file-validate $app_id.desktop"
fi
# --no-net: the screenshots' URLs are checked for form, not fetched (the
# tests reach loopback only). Errors and warnings fail; pedantic notes do not.
if appstreamcli validate --no-net "$contents/usr/share/metainfo/$app_id.metainfo.xml"; then
    pass "appstreamcli validate $app_id.metainfo.xml"
else
    fail "appstreamcli validate $app_id.metainfo.xml"
fi

# The window's own icon (built into the binary) is the SVG too.
if compare -metric AE -fuzz 3% "$contents/usr/share/icons/hicolor/128x128/apps/$app_id.png" assets/tally-128.png null: 2>/dev/null; then
    pass "assets/tally-128.png (the window's icon) is assets/tally.svg rendered"
else
    fail "assets/tally-128.png differs from assets/tally.svg rendered at 128 px: cp target/packaging/icons/128x128/$app_id.png assets/tally-128.png"
fi

step "lintian"
# Every warning lintian may give must be explained in packaging/README.md,
# as a bullet starting with the tag in backquotes: a new one fails here
# until someone looks at it and says why it stays (or fixes it).
explained=$(sed -n 's/^- `\([a-z0-9][a-z0-9+.-]*\)`.*/\1/p' packaging/README.md | sort -u)
# Exit status: 0 no error, 1 errors (the default --fail-on), else lintian
# itself failed, which is a failure too.
set +e
lint=$(lintian --no-cfg --fail-on error --display-level '>=warning' "$deb" 2>&1)
lint_status=$?
set -e
echo "$lint"
if [[ $lint_status -eq 0 ]] && ! grep -q '^E: ' <<<"$lint"; then
    pass "lintian: no errors"
else
    fail "lintian: errors, or lintian could not run (exit $lint_status)"
fi
while read -r tag; do
    [[ -z $tag ]] && continue
    grep -qxF "$tag" <<<"$explained" || fail "lintian warning '$tag' is not explained in packaging/README.md"
done < <(sed -n 's/^W: [^:]*: \([a-z0-9][a-z0-9+.-]*\).*/\1/p' <<<"$lint" | sort -u)
grep -q '^W: ' <<<"$lint" && echo "(warnings above are each explained in packaging/README.md)"

step "install test, in a throwaway root"
set +e
unshare --mount --fork bash -s "$work" "$deb" "$app_id" "$out" <<'INSTALL'
set -euo pipefail
work=$1 deb=$2 app_id=$3 out=$4
mount --make-rprivate /
mount -t tmpfs tmpfs "$work"
mkdir -p "$work/upper" "$work/lower-work" "$work/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/lower-work" "$work/root"
r=$work/root
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount --rbind /sys "$r/sys"
mount -t tmpfs tmpfs "$r/tmp"
mount -t tmpfs tmpfs "$r/run"
mkdir -p "$r/tmp/pkg" "$r/tmp/out"
cp "$deb" "$r/tmp/pkg/"
mount --bind "$out" "$r/tmp/out"
chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp/home LANG=C.UTF-8 \
    bash -s "/tmp/pkg/$(basename "$deb")" "$app_id" <<'INSIDE'
set -uo pipefail
deb=$1 app_id=$2
mkdir -p "$HOME"
bad=0
ok() { echo "ok: $*"; }
no() { echo "FAIL: $*"; bad=1; }

export DEBIAN_FRONTEND=noninteractive
# No network is needed: `make test` installs the package's dependencies
# first, so apt only has to find them satisfied.
if apt-get install -y --no-install-recommends "$deb" > /tmp/out/apt-install.log 2>&1; then
    ok "apt-get install $(basename "$deb")"
else
    cat /tmp/out/apt-install.log; no "apt-get install"; exit 1
fi
[ "$(dpkg-query -W -f='${Status}' tally)" = "install ok installed" ] && ok "dpkg: tally installed" || no "dpkg status"

for f in /usr/bin/tally /usr/share/applications/$app_id.desktop /usr/share/metainfo/$app_id.metainfo.xml \
         /usr/share/icons/hicolor/scalable/apps/$app_id.svg /usr/share/icons/hicolor/48x48/apps/$app_id.png \
         /usr/share/icons/hicolor/512x512/apps/$app_id.png /usr/share/man/man1/tally.1.gz /usr/share/man/man1/tally-stream.1.gz \
         /usr/share/bash-completion/completions/tally /usr/share/zsh/vendor-completions/_tally /usr/share/fish/vendor_completions.d/tally.fish \
         /usr/share/doc/tally/copyright /usr/share/doc/tally/THIRD-PARTY-LICENSES.gz /usr/share/doc/tally/changelog.Debian.gz; do
    [ -s "$f" ] && ok "installed $f" || no "missing $f"
done
zgrep -q 'Fraunhofer FDK AAC' /usr/share/doc/tally/THIRD-PARTY-LICENSES.gz && grep -q 'License: FDK-AAC' /usr/share/doc/tally/copyright \
    && ok "fdk-aac's licence is shipped" || no "fdk-aac's licence is not in the copyright and third-party licences"

version=$(tally --version 2>&1); echo "  $ tally --version: $version"
case "$version" in "tally "[0-9]*) ok "tally --version";; *) no "tally --version said: $version";; esac
devices=$(tally devices 2>&1); status=$?
printf '%s\n' "$devices" | sed 's/^/  | /'
if [ $status -eq 0 ] && printf '%s' "$devices" | grep -q '^Cameras:' && printf '%s' "$devices" | grep -q '^Microphones:'; then
    ok "tally devices"
else
    no "tally devices (exit $status)"
fi
zcat /usr/share/man/man1/tally.1.gz | grep -q '^\.SH FILES' && ok "man page tally(1) has FILES" || no "man page tally(1)"
if bash -c 'source /usr/share/bash-completion/completions/tally && complete -p tally' >/dev/null 2>&1; then
    ok "bash completion loads"
else
    no "bash completion does not load"
fi

# The window, opened the way the menu opens it: the desktop entry's Exec line.
exec_line=$(sed -n 's/^Exec=//p' /usr/share/applications/$app_id.desktop | head -1)
wm_class=$(sed -n 's/^StartupWMClass=//p' /usr/share/applications/$app_id.desktop | head -1)
[ "$(command -v "${exec_line%% *}")" = /usr/bin/tally ] && ok "Exec=$exec_line is /usr/bin/tally" || no "Exec=$exec_line"
xvfb-run -a -s "-screen 0 1280x800x24" bash -s "$exec_line" "$wm_class" <<'X' > /tmp/out/window.log 2>&1
exec_line=$1 wm_class=$2
for i in $(seq 1 100); do xwininfo -root >/dev/null 2>&1 && break; sleep 0.1; done
RUST_LOG=info $exec_line & app=$!
wid=
for i in $(seq 1 150); do
    wid=$(xwininfo -root -tree | awk '/"Tally"/ {print $1; exit}')
    [ -n "$wid" ] && break
    kill -0 $app 2>/dev/null || break
    sleep 0.2
done
echo "WINDOW=$wid"
[ -n "$wid" ] || { echo "APP-EXITED"; exit 1; }
echo "WM_CLASS=$(xprop -id "$wid" WM_CLASS)"
for i in $(seq 1 100); do
    import -window root /tmp/out/screen.png 2>/dev/null
    colours=$(identify -format '%k' /tmp/out/screen.png 2>/dev/null || echo 0)
    [ "$colours" -ge 64 ] && break
    sleep 0.2
done
echo "COLOURS=$colours"
# Three seconds up, then the picture again: the app must still be running
# (not a window that drew once and died), and the status bar has its first
# CPU and memory figures by then, for the documentation's picture.
sleep 3
import -window root /tmp/out/screen.png
# The window alone, for the documentation.
geometry=$(xwininfo -id "$wid" | awk '/Width:/ {w=$2} /Height:/ {h=$2} /Absolute upper-left X:/ {x=$4} /Absolute upper-left Y:/ {y=$4} END {print w "x" h "+" x "+" y}')
convert /tmp/out/screen.png -crop "$geometry" +repage /tmp/out/window.png
kill -0 $app 2>/dev/null && echo APP-ALIVE
kill $app; wait $app
echo APP-STOPPED
X
cat /tmp/out/window.log | sed 's/^/  | /'
grep -q '^WINDOW=0x' /tmp/out/window.log && ok "the window opened" || no "no Tally window appeared"
colours=$(sed -n 's/^COLOURS=//p' /tmp/out/window.log)
[ "${colours:-0}" -ge 64 ] && ok "the window drew ($colours colours)" || no "the window never drew (${colours:-0} colours)"
grep -q '^APP-ALIVE' /tmp/out/window.log && ok "the app kept running" || no "the app had exited by the screenshot"
grep -q "^WM_CLASS=.*\"$wm_class\"" /tmp/out/window.log && ok "WM_CLASS matches StartupWMClass=$wm_class" \
    || no "the window's WM_CLASS does not match the desktop entry's StartupWMClass=$wm_class"
! grep -q panicked /tmp/out/window.log || no "the app panicked"
grep -q 'opening the window' "$HOME/.local/state/tally/tally.log" 2>/dev/null && ok "the window's log file: ~/.local/state/tally/tally.log" \
    || no "no log file at ~/.local/state/tally/tally.log"

if apt-get purge -y tally > /tmp/out/apt-purge.log 2>&1 && [ ! -e /usr/bin/tally ] && [ ! -e /usr/share/applications/$app_id.desktop ] \
    && [ -z "$(dpkg-query -W -f='${Status}' tally 2>/dev/null | grep installed)" ]; then
    ok "apt-get purge tally removed it"
else
    cat /tmp/out/apt-purge.log; no "apt-get purge tally"
fi
exit $bad
INSIDE
INSTALL
status=$?
set -e
mkdir -p "$(dirname "$shot_out")"
cp "$out/window.png" "$shot_out" 2>/dev/null && echo "screenshot of the installed app: $shot_out" || true
[[ $status -eq 0 ]] && pass "install test" || fail "install test (see above)"

echo
if [[ $failures -gt 0 ]]; then
    echo "package checks: $failures failed" >&2
    exit 1
fi
echo "package checks: all passed ($(basename "$deb"))"
