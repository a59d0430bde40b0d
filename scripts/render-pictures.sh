#!/usr/bin/env bash
# Renders the README's pictures, docs/pictures/*.dot, to SVG with Graphviz's `dot` (Debian's
# graphviz package; scripts/setup.sh installs it), each SVG stamped with its source's SHA-256
# so that tests/unit/test_pictures.py can tell a picture that no longer matches its source.
# Usage: scripts/render-pictures.sh [OUTDIR]   (default: docs/pictures, beside the sources)
set -euo pipefail

src_dir="$(cd "$(dirname "$0")/../docs/pictures" && pwd)"
out_dir="${1:-$src_dir}"
mkdir -p "$out_dir"
for src in "$src_dir"/*.dot; do
    name="$(basename "$src" .dot)"
    sum="$(sha256sum "$src" | cut -d' ' -f1)"
    dot -Tsvg "$src" | sed "1a <!-- source: $name.dot sha256:$sum -->" > "$out_dir/$name.svg.tmp"
    mv "$out_dir/$name.svg.tmp" "$out_dir/$name.svg"
done
