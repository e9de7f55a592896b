#!/usr/bin/env python3
"""Writes THIRD-PARTY-LICENSES: every crate (and vendored C library) linked
into the `tally` binary, with its licence and the licence texts it ships.

The set is what `cargo metadata` resolves for the target platform through
normal (not dev, not build) dependencies from `tally`: exactly what the
binary links. Usage: third_party_licenses.py OUT [--target TRIPLE]
"""

import json
import os
import subprocess
import sys
from collections import defaultdict

# Licence files a crate may ship, by name prefix (case-insensitive).
LICENSE_PREFIXES = ("license", "licence", "copying", "notice", "copyright", "unlicense")
# C libraries vendored inside -sys crates: their own licence files, which the
# crate's Cargo.toml licence does not cover (fdk-aac-sys says MIT for its
# Rust code; the FDK AAC library inside is under Fraunhofer's licence).
# The standard texts, taken from a crate that ships them as they are.
STANDARD_TEXTS = ("LICENSE-MIT", "LICENSE-APACHE")
VENDORED = {
    "fdk-aac-sys": [("Fraunhofer FDK AAC Codec Library", "aac/NOTICE")],
    "openh264-sys2": [("Cisco OpenH264", "upstream/LICENSE")],
}


def metadata(target):
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", target],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def linked_packages(meta):
    """Package ids reachable from the root package through normal dependencies."""
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p["id"] for p in meta["packages"] if p["name"] == "tally" and p["source"] is None)
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    return seen


def licence_files(pkg):
    d = os.path.dirname(pkg["manifest_path"])
    files = []
    if pkg.get("license_file"):
        files.append(os.path.join(d, pkg["license_file"]))
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if os.path.isfile(path) and name.lower().startswith(LICENSE_PREFIXES) and path not in files:
            files.append(path)
    return files


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_path = sys.argv[1]
    target = sys.argv[sys.argv.index("--target") + 1] if "--target" in sys.argv else "x86_64-unknown-linux-gnu"
    meta = metadata(target)
    ids = linked_packages(meta)
    pkgs = sorted((p for p in meta["packages"] if p["id"] in ids and p["source"] is not None), key=lambda p: (p["name"], p["version"]))

    by_licence = defaultdict(list)
    for p in pkgs:
        by_licence[p.get("license") or "see the licence files below"].append(p)

    lines = [
        "Third-party software in Tally",
        "=============================",
        "",
        "Tally itself is MIT-licensed (see copyright). The tally binary is built",
        f"with the following {len(pkgs)} Rust crates and the C libraries vendored in",
        "two of them. Each is listed with its licence as its authors declared it,",
        "followed by the licence texts each one ships.",
        "",
        "Vendored C libraries",
        "--------------------",
        "",
        "- Fraunhofer FDK AAC Codec Library (in fdk-aac-sys): the Software License for",
        "  The Fraunhofer FDK AAC Codec Library for Android. It permits redistribution",
        "  but grants no patent licence for AAC. NOT an open-source licence in the",
        "  OSI sense and not MIT: read it before redistributing Tally.",
        "- Cisco OpenH264 (in openh264-sys2), built from source: BSD-2-Clause. Cisco's",
        "  patent-licence coverage applies only to Cisco's own prebuilt binaries, not",
        "  to this build.",
        "",
        "Crates by licence",
        "-----------------",
        "",
    ]
    for licence in sorted(by_licence):
        lines.append(f"{licence}:")
        for p in by_licence[licence]:
            lines.append(f"  {p['name']} {p['version']}")
        lines.append("")

    lines += ["Licence texts", "-------------", ""]
    for p in pkgs:
        d = os.path.dirname(p["manifest_path"])
        texts = [(None, f) for f in licence_files(p)]
        texts += [(what, os.path.join(d, rel)) for what, rel in VENDORED.get(p["name"], [])]
        lines.append("=" * 78)
        lines.append(f"{p['name']} {p['version']} ({p.get('license') or 'no SPDX expression'})")
        if p.get("repository"):
            lines.append(p["repository"])
        lines.append("=" * 78)
        if not texts:
            authors = ", ".join(p.get("authors") or []) or f"the {p['name']} authors"
            lines.append(f"This crate ships no licence file. Copyright: {authors}.")
            lines.append(f"Licence: {p.get('license')}; the standard texts are at the end of this file.")
        for what, path in texts:
            if not os.path.isfile(path):
                sys.exit(f"third_party_licenses: {p['name']}: {path} is missing")
            with open(path, encoding="utf-8", errors="replace") as f:
                body = f.read().rstrip()
            lines.append(f"--- {what or os.path.basename(path)} ---")
            lines.append(body)
            lines.append("")
        lines.append("")

    lines += ["=" * 78, "Standard licence texts (for the crates above that ship no licence file)", "=" * 78]
    for name in STANDARD_TEXTS:
        path = next((f for p in pkgs for f in licence_files(p) if os.path.basename(f) == name), None)
        if path is None:
            sys.exit(f"third_party_licenses: no crate ships {name} to take the standard text from")
        with open(path, encoding="utf-8", errors="replace") as f:
            lines += [f"--- {name} (as shipped by {os.path.basename(os.path.dirname(path))}) ---", f.read().rstrip(), ""]

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out_path}: {len(pkgs)} crates, {sum(len(v) for v in VENDORED.values())} vendored C libraries")


if __name__ == "__main__":
    main()
