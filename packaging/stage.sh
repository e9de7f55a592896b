#!/usr/bin/env bash
# Generates what the .deb and the release tarball ship besides the binary,
# into target/packaging/:
#   man/*.1.gz          the manual pages, from the clap definition (`tally manpages`)
#   completions/        bash, zsh and fish completions (`tally completions SHELL`)
#   icons/NxN/          the icon at the hicolor theme's sizes, rendered from assets/tally.svg
#   THIRD-PARTY-LICENSES.gz   every linked crate's licence and texts (third_party_licenses.py)
# Usage: packaging/stage.sh [path/to/tally]  (default target/release/tally)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-target/release/tally}
out=target/packaging
app_id=io.github.tallycast.Tally
# The hicolor sizes a desktop asks for (menus 16-48, docks and software
# centres up to 512); scalable/ gets the SVG itself.
sizes=(16 22 24 32 48 64 128 256 512)

[[ -x $bin ]] || { echo "stage.sh: $bin is not built (cargo build --release)" >&2; exit 1; }
for tool in rsvg-convert python3 gzip; do
    command -v "$tool" >/dev/null || { echo "stage.sh: $tool is missing (make package installs it)" >&2; exit 1; }
done

# Dates in the man pages and gzip headers from the last commit, so that the
# same commit stages the same bytes.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

rm -rf "$out"
mkdir -p "$out/man" "$out/completions" "$out/icons"

"$bin" manpages "$out/man" >/dev/null
gzip -9n "$out"/man/*.1

"$bin" completions bash > "$out/completions/tally.bash"
"$bin" completions zsh > "$out/completions/_tally"
"$bin" completions fish > "$out/completions/tally.fish"

for n in "${sizes[@]}"; do
    mkdir -p "$out/icons/${n}x${n}"
    rsvg-convert -w "$n" -h "$n" assets/tally.svg -o "$out/icons/${n}x${n}/$app_id.png"
done

python3 packaging/third_party_licenses.py "$out/THIRD-PARTY-LICENSES" >/dev/null
gzip -9n "$out/THIRD-PARTY-LICENSES"

echo "staged in $out: $(ls "$out"/man | wc -l) man pages, 3 completions, ${#sizes[@]} icon sizes, third-party licences"
