#!/usr/bin/env bash
# The headline sweep: mixed corruption x filters (default, none) x 3 training seeds, queued with
# DVC and run by its queue, then traced into reports/trace.md.
#
#     bash benchmarks/headline_sweep.sh [workers] [name] [levels] [extra -S overrides...]
#     bash benchmarks/headline_sweep.sh 2                                 # the default model
#     bash benchmarks/headline_sweep.sh 2 headline-flow 0,0.3 model=flow   # the flow family
#     (on a GPU machine without DVC, benchmarks/device_runs.py runs the flow family's check)
#
# From the repository root, after `dvc repro`. `levels` defaults to 0,0.1,0.2,0.3 (24 runs).
# Inception is left out (judge metrics only): it would add about a minute to every run on a CPU.
# With several workers each gets an even share of the CPU's threads.
set -euo pipefail
workers=${1:-1}
name=${2:-headline}
levels=${3:-0,0.1,0.2,0.3}
extra=()
for override in "${@:4}"; do extra+=(-S "$override"); done
dvc exp run --queue -n "$name" \
    -S "ingest.corrupt.mixed=$levels" -S 'filters=default,none' -S 'train.seed=0,1,2' \
    -S eval.metrics.inception_samples=0 "${extra[@]}"
# DVC's queue until it is empty, its workers restarted if they stop early (src/datamatters/queue.py)
OMP_NUM_THREADS=$(( $(nproc) / workers > 0 ? $(nproc) / workers : 1 )) \
    datamatters queue -j "$workers" --poll 30
datamatters trace "$name" --metric fid_judge_1k --metric precision_judge_1k \
    --metric memorization_judge_1k
