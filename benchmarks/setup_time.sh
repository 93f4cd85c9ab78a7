#!/usr/bin/env bash
# The README's two commands on fresh clones, each cold (no .venv) and then warm (set up):
#
#     bash benchmarks/setup_time.sh [repro|test|both]     # from the repository root
#
# Clones the committed HEAD into temporary directories, so nothing of this checkout helps but
# pip's own download cache. Prints the wall time of each command.
set -euo pipefail
what=${1:-both}
repo=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

timed() {  # timed LABEL DIR COMMAND...
    local label=$1 dir=$2; shift 2
    local started=$SECONDS
    (cd "$dir" && "$@") > "$work/$label.log" 2>&1 || { tail -40 "$work/$label.log"; exit 1; }
    echo "$label: $((SECONDS - started)) s"
}

for target in repro test; do
    [[ $what == both || $what == "$target" ]] || continue
    git clone -q "$repo" "$work/$target"
    timed "make $target (cold)" "$work/$target" make "$target"
    timed "make $target (warm)" "$work/$target" make "$target"
done
