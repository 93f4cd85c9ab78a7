"""Experiments built in memory for the trace: the tests' sweep, also what
`benchmarks/trace_snapshot.py` renders, so the snapshot covers exactly what the tests check."""

from __future__ import annotations

from datamatters.trace.experiments import (
    CHECKPOINT,
    EVALUATE,
    QUALITY,
    REAL_FLOOR,
    TRAINING_SET,
    Experiment,
)

DEFAULTS = {"ingest.corrupt.mixed": 0.0, "quality.enabled": True, "labeling.audit.enabled": True}


def experiment(
    name: str, mixed: float, filters: bool, seed: int, fid: float, **extra
) -> Experiment:
    params = {
        "ingest.corrupt.mixed": mixed,
        "quality.enabled": filters,
        "labeling.audit.enabled": filters,
        "train.seed": seed,
        **extra,
    }
    metrics = {
        EVALUATE: {
            "fid_judge_1k": fid,
            "fid_judge_1k_ci95_low": fid - 2,
            "fid_judge_1k_ci95_high": fid + 2,
        },
        QUALITY: {"kept_fraction": 0.9, "blur_flagged": 3},
        REAL_FLOOR: {"fid_judge_1k": 3.3, "fid_judge_1k_ci95_low": 3.0},
    }
    training_set = f"{mixed}{filters}".replace(".", "").ljust(32, "0")  # one per configuration
    outs = {TRAINING_SET: f"{training_set}.dir", CHECKPOINT: "ab" * 16}
    return Experiment(name, f"{seed}" * 40, "c" * 40, "2026-11-28T20:00:00", params, metrics, outs)


def small_sweep() -> list[Experiment]:
    """2 corruption levels x filters on/off x 2 seeds; seed spread 2 everywhere."""
    fids = {(0.0, True): 50, (0.0, False): 51, (0.3, True): 60, (0.3, False): 100}
    return [
        experiment(f"sweep-{2 * i + seed + 1}", mixed, filters, seed, fid + (1.0 if seed else -1.0))
        for i, ((mixed, filters), fid) in enumerate(fids.items())
        for seed in (0, 1)
    ]
