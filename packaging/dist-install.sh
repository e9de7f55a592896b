#!/bin/sh
# Installs Tally from the release tarball (this is install.sh in it).
#   ./install.sh [PREFIX]               install (PREFIX: ~/.local by default)
#   ./install.sh --uninstall [PREFIX]   remove what it installed
# The menu entry's Exec names PREFIX/bin/tally, so the app opens from the
# menu even where PREFIX/bin is not on the PATH the desktop session has.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
app_id=io.github.tallycast.Tally

uninstall=
if [ "${1:-}" = "--uninstall" ]; then uninstall=1; shift; fi
prefix=${1:-$HOME/.local}

# Every file this script installs, relative to PREFIX.
files="bin/tally
share/applications/$app_id.desktop
share/metainfo/$app_id.metainfo.xml
share/bash-completion/completions/tally
share/zsh/site-functions/_tally
share/fish/vendor_completions.d/tally.fish
share/icons/hicolor/scalable/apps/$app_id.svg"
for f in "$here"/share/icons/hicolor/*x*/apps/$app_id.png "$here"/share/man/man1/*.1.gz "$here"/share/doc/tally/*; do
    files="$files
${f#"$here"/}"
done

refresh() {
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$prefix/share/applications" 2>/dev/null || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" 2>/dev/null || true
}

if [ -n "$uninstall" ]; then
    echo "$files" | while IFS= read -r f; do rm -f "$prefix/$f"; done
    rmdir "$prefix/share/doc/tally" 2>/dev/null || true
    refresh
    echo "Tally removed from $prefix"
    exit 0
fi

echo "$files" | while IFS= read -r f; do
    mkdir -p "$(dirname "$prefix/$f")"
    case $f in
        bin/*) install -m 755 "$here/$f" "$prefix/$f" ;;
        *) install -m 644 "$here/$f" "$prefix/$f" ;;
    esac
done
sed -i "s|^Exec=tally|Exec=$prefix/bin/tally|" "$prefix/share/applications/$app_id.desktop"
refresh
echo "Tally installed in $prefix: $prefix/bin/tally, and in your desktop's menu"
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "note: $prefix/bin is not on your PATH; add it to run tally from a terminal" ;;
esac
