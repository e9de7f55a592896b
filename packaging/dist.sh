#!/usr/bin/env bash
# The release tarball for Linux distributions other than Debian's family:
# target/dist/tally-VERSION-linux-ARCH.tar.gz, holding the stripped binary,
# what the .deb ships besides it (in the same share/ layout), the licences,
# the README and an install script (packaging/dist-install.sh).
# Usage: packaging/dist.sh  (after `cargo build --release` and packaging/stage.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

app_id=io.github.tallycast.Tally
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name=tally-$version-linux-$(uname -m)
stage=target/packaging
tree=target/dist/$name

[[ -x target/release/tally ]] || { echo "dist.sh: build first (cargo build --release)" >&2; exit 1; }
[[ -d $stage/man ]] || { echo "dist.sh: stage first (packaging/stage.sh)" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

rm -rf "$tree" "target/dist/$name.tar.gz"
mkdir -p "$tree/bin" "$tree/share/applications" "$tree/share/metainfo" "$tree/share/man/man1" \
    "$tree/share/bash-completion/completions" "$tree/share/zsh/site-functions" "$tree/share/fish/vendor_completions.d" \
    "$tree/share/icons/hicolor/scalable/apps" "$tree/share/doc/tally"

strip -o "$tree/bin/tally" target/release/tally
cp packaging/$app_id.desktop "$tree/share/applications/"
cp packaging/$app_id.metainfo.xml "$tree/share/metainfo/"
cp "$stage"/man/*.1.gz "$tree/share/man/man1/"
cp "$stage/completions/tally.bash" "$tree/share/bash-completion/completions/tally"
cp "$stage/completions/_tally" "$tree/share/zsh/site-functions/_tally"
cp "$stage/completions/tally.fish" "$tree/share/fish/vendor_completions.d/tally.fish"
cp assets/tally.svg "$tree/share/icons/hicolor/scalable/apps/$app_id.svg"
for dir in "$stage"/icons/*x*; do
    size=$(basename "$dir")
    mkdir -p "$tree/share/icons/hicolor/$size/apps"
    cp "$dir/$app_id.png" "$tree/share/icons/hicolor/$size/apps/"
done
cp README.md LICENSE packaging/copyright "$stage/THIRD-PARTY-LICENSES.gz" "$tree/share/doc/tally/"
cp packaging/dist-install.sh "$tree/install.sh"
cat > "$tree/README.txt" <<EOF
Tally $version for Linux ($(uname -m))

Install for yourself (into ~/.local; ~/.local/bin must be on your PATH):
    ./install.sh
or for everyone:
    sudo ./install.sh /usr/local
Remove it again with ./install.sh --uninstall [PREFIX].

Then open Tally from your desktop's menu, or run: tally --help

The binary needs glibc 2.35 or newer, ALSA (libasound.so.2), libstdc++,
and for the window OpenGL (libGL/libEGL), X11 or Wayland and xkbcommon.
The guide is share/doc/tally/README.md (also: man tally).

Licences: Tally is MIT-licensed. It contains the Fraunhofer FDK AAC Codec
Library, whose licence is not MIT and grants no patent licence for AAC, and
Cisco's OpenH264 built from source: read share/doc/tally/copyright and
share/doc/tally/THIRD-PARTY-LICENSES.gz before redistributing it.
EOF
# Owner and dates fixed, so the same commit gives the same archive.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C target/dist -czf "target/dist/$name.tar.gz" "$name"
echo "target/dist/$name.tar.gz ($(du -h "target/dist/$name.tar.gz" | cut -f1))"
