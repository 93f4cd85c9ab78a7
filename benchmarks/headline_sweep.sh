#!/usr/bin/env bash
# The headline sweep: mixed corruption (0, 20%, 30%) x filters (default, none) x 3 training seeds,
# 18 experiments queued with DVC and run by its queue, then traced into reports/trace.md.
#
#     bash benchmarks/headline_sweep.sh [workers]    # from the repository root, after `dvc repro`
#
# Inception is left out (judge metrics only): it would add about 90 s to every run on a CPU.
# With several workers each gets an even share of the CPU's threads.
set -euo pipefail
workers=${1:-1}
dvc exp run --queue -n headline \
    -S 'ingest.corrupt.mixed=0,0.2,0.3' -S 'filters=default,none' -S 'train.seed=0,1,2' \
    -S eval.metrics.inception_samples=0
OMP_NUM_THREADS=$(( $(nproc) / workers > 0 ? $(nproc) / workers : 1 )) dvc queue start -j "$workers"
while dvc queue status | grep -E 'Running|Queued' >/dev/null; do sleep 30; done
dvc queue status
datamatters trace headline --metric fid_judge_1k --metric precision_judge_1k \
    --metric memorization_judge_1k
