#!/usr/bin/env bash
# The release tarball's check, run by `make test`: unpacked, installed with
# its install.sh into a fresh prefix, then the installed tally run, its menu
# entry validated (Exec pointing into the prefix), and uninstalled again,
# leaving nothing behind.
# Usage: packaging/check-dist.sh target/dist/tally-*.tar.gz
set -euo pipefail
tarball=$(realpath "${1:?usage: packaging/check-dist.sh TARBALL}")
app_id=io.github.tallycast.Tally
tmp=$(mktemp -d /tmp/tally-dist.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

tar -xzf "$tarball" -C "$tmp"
dir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -1)
prefix=$tmp/prefix
for f in install.sh README.txt bin/tally share/doc/tally/copyright share/doc/tally/LICENSE share/doc/tally/THIRD-PARTY-LICENSES.gz \
         share/man/man1/tally.1.gz share/icons/hicolor/256x256/apps/$app_id.png; do
    [[ -s $dir/$f ]] && pass "tarball has $f" || fail "tarball lacks $f"
done
readelf -S "$dir/bin/tally" | grep -q '\.symtab' && fail "bin/tally is not stripped" || pass "bin/tally is stripped"

HOME=$tmp/home PATH=/usr/bin:/bin "$dir/install.sh" "$prefix" > "$tmp/install.log" 2>&1 && pass "install.sh $prefix" || { cat "$tmp/install.log"; fail "install.sh"; }
version=$("$prefix/bin/tally" --version 2>&1 || true)
[[ $version == "tally "* ]] && pass "installed tally --version: $version" || fail "installed tally --version: $version"
desktop=$prefix/share/applications/$app_id.desktop
grep -qx "Exec=$prefix/bin/tally" "$desktop" && pass "the menu entry runs $prefix/bin/tally" || fail "Exec in $desktop: $(grep ^Exec= "$desktop")"
desktop-file-validate "$desktop" && pass "desktop-file-validate (installed)" || fail "desktop-file-validate (installed)"
[[ -s $prefix/share/icons/hicolor/48x48/apps/$app_id.png && -s $prefix/share/zsh/site-functions/_tally ]] \
    && pass "icons and completions installed" || fail "icons or completions missing"

"$dir/install.sh" --uninstall "$prefix" > "$tmp/uninstall.log" 2>&1 || { cat "$tmp/uninstall.log"; fail "install.sh --uninstall"; }
left=$(find "$prefix" -type f 2>/dev/null | grep -v -e 'icon-theme.cache$' -e 'mimeinfo.cache$' || true)
[[ -z $left ]] && pass "install.sh --uninstall removed every file" || fail "left behind: $left"

if [[ $failures -gt 0 ]]; then echo "tarball checks: $failures failed" >&2; exit 1; fi
echo "tarball checks: all passed ($(basename "$tarball"))"
