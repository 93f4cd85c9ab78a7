"""Every output the trace code produces from in-memory experiments, written under a folder.

    python benchmarks/trace_snapshot.py OUT   # at two commits, then: diff -r OUT_A OUT_B

A refactor of `trace/` should leave every file identical: the reports (markdown and PNG), the
`datamatters exps` text and CSV, and the lineage summary, for the trace tests' sweep
(`tests/trace_fixtures.py`), a
larger synthetic set (two numeric axes, 1-3 seeds, missing values, several checks), the flow's
GPU sweep (`reports/flow-gpu/results.json` against this checkout's `params.yaml`), and a set
whose seeds agree exactly (zero noise). Needs no DVC repository.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
from device_runs import TRACED_METRICS, sweep_experiments
from omegaconf import OmegaConf

from datamatters.pipeline import metrics_file, outputs
from datamatters.trace.experiments import Experiment, flatten, resolve_sets
from datamatters.trace.lineage import find, summary, used_by
from datamatters.trace.markdown import render as render_report
from datamatters.trace.model import build_report
from datamatters.trace.overview import overview_rows, render, render_csv
from datamatters.trace.report import write_trace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from trace_fixtures import DEFAULTS, experiment, small_sweep  # noqa: E402 - the tests' sweep

OUT = Path(sys.argv[1])
QUALITY, LABELING, AUGMENT, EVALUATE, REAL_FLOOR = (
    metrics_file(s) for s in ("quality", "labeling", "augment", "evaluate", "real_floor")
)
TRAINING_SET, CHECKPOINT = outputs("augment")[0], outputs("train")[0]


def scored(exps):
    scores = {
        "fid_judge_1k_class_mean": 55.0,
        "fid_judge_1k_class.3": 57.0,
        "kid_judge_1k_mean": 30.0,
        "kid_judge_1k_std": 2.0,
        "is_judge_1k_std": 0.2,
        "precision_judge_1k": 0.8,
        "recall_judge_1k": 0.7,
        "generated_images": 1000,
        "classes_not_in_reference": [],
    }
    return [replace(e, metrics=e.metrics | {EVALUATE: e.metrics[EVALUATE] | scores}) for e in exps]


def rich():
    """Two numeric axes and a bool one, 1-3 seeds, several outputs, gaps, every data column."""
    rng = random.Random(7)
    exps = []
    index = 0
    for mixed in (0.0, 0.1, 0.3):
        for copies in (1, 2):
            for filters in (True, False):
                seeds = 3 if (mixed, copies) == (0.0, 1) else (2 if filters else 1)
                for seed in range(seeds):
                    index += 1
                    fid = 40 + 80 * mixed * (0.5 if filters else 1.0) + 3 * copies + rng.gauss(0, 2)
                    ev = {
                        "fid_judge_1k": fid,
                        "precision_judge_1k": 0.8 - mixed / 3 + rng.gauss(0, 0.01),
                        "recall_judge_1k": 0.6 - mixed / 4 + rng.gauss(0, 0.01),
                        "kid_judge_1k_mean": fid / 2 + rng.gauss(0, 1),
                        "kid_judge_1k_std": 1.5,
                        "memorization_judge_1k": rng.random() / 100,
                        "fid_inception_500": fid * 1.7,
                        "precision_inception_500": 0.7,
                        "recall_inception_500": 0.5,
                        "generated_images": 1000,
                    }
                    if index % 5:
                        ev["fid_judge_1k_ci95_low"] = fid - 3.1 - rng.random()
                        ev["fid_judge_1k_ci95_high"] = fid + 3.4 + rng.random()
                    if index % 3:
                        ev["fid_inception_500_ci95_low"] = fid * 1.7 - 5
                        ev["fid_inception_500_ci95_high"] = fid * 1.7 + 6
                    if index == 4:
                        del ev["precision_judge_1k"]
                    metrics = {
                        EVALUATE: ev,
                        QUALITY: {
                            "kept_fraction": 1 - mixed * (0.9 if filters else 0.01),
                            "precision": 0.91 if filters else None,
                            "recall": 0.82 + index / 1000 if filters else None,
                            "blur_flagged": int(100 * mixed) + seed,
                            "noise_flagged": index,
                            "near_duplicate_flagged": 2,
                        },
                        LABELING: {
                            "dropped_for_label_issue": 10 + index if filters else 0,
                            "estimated_noise_rate": 0.0321 + mixed / 7,
                            "label_issues": 30 + index,
                        },
                        AUGMENT: {"training_images": 4000 - int(1000 * mixed) * copies},
                        REAL_FLOOR: {"fid_judge_1k": 3.3, "fid_inception_500": 5.25},
                    }
                    if index == 7:
                        del metrics[LABELING]
                        metrics[QUALITY]["kept_fraction"] = 1
                    params = {
                        "ingest.corrupt.mixed": mixed,
                        "augment.copies": copies,
                        "quality.enabled": filters,
                        "labeling.audit.enabled": filters,
                        "train.seed": seed,
                        "eval.samples": 1000,
                        "hydra.run.dir": "x",
                    }
                    ts = f"{mixed}{filters}{copies}".replace(".", "").ljust(32, "0")
                    outs = {CHECKPOINT: f"{index:x}" * 32} if index != 9 else {}
                    if filters or mixed == 0.0:
                        outs[TRAINING_SET] = f"{ts}.dir"
                    base = "d" * 40 if index % 4 else "e" * 40
                    exps.append(
                        Experiment(
                            f"rich-{index}", f"{index:040x}", base, "t", params, metrics, outs
                        )
                    )
    return exps


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def everything(tag: str, exps, names, defaults, metrics=()):
    out = OUT / tag
    write_trace(exps, names, defaults, out, metrics)
    write(out / "nofig.md", render_report(build_report(exps, names, defaults, metrics)))
    members = [e for _, m in resolve_sets(exps, names) for e in m]
    for every in (False, True):
        header, rows = overview_rows(members, every_metric=every)
        write(out / f"exps-all{every}.txt", render(header, rows) + "\n")
        write(out / f"exps-all{every}.csv", render_csv(header, rows) + "\n")


def flow_gpu():
    runs = [
        r
        for r in json.loads((ROOT / "reports" / "flow-gpu" / "results.json").read_text())
        if "fid_judge_1k" in r
    ]
    exps = sweep_experiments(runs, "flow-gpu")
    defaults = flatten(OmegaConf.to_container(OmegaConf.load(ROOT / "params.yaml")))
    everything("flow-gpu", exps, ["flow-gpu"], defaults, TRACED_METRICS)
    everything("flow-gpu-default-metric", exps, ["flow-gpu"], defaults)


def main() -> None:
    s = small_sweep()
    everything("sweep", s, ["sweep"], DEFAULTS)
    everything("sweep-scores", scored(s), ["sweep"], DEFAULTS)
    everything(
        "sweep-scores-kid-recall",
        scored(s),
        ["sweep"],
        DEFAULTS,
        ["kid_judge_1k_mean", "recall_judge_1k"],
    )
    repeat = replace(s[0], name="again-1", rev="f" * 40)
    changed = replace(s[1], name="again-2", rev="e" * 40, outs={})
    everything("repeats", [*s, repeat, changed], ["sweep", "again"], DEFAULTS)
    singles = [
        experiment("clean", 0.0, True, 0, 50.0),
        experiment("dirty", 0.3, True, 0, 70.0),
        experiment("gaunt-thug", 0.0, True, 0, 51.0),
    ]
    everything("singles", singles, ["clean", "dirty"], DEFAULTS)
    everything("no-names", [*singles, *s], [], DEFAULTS)
    bare = [
        replace(e, metrics={EVALUATE: {"fid_judge_1k": e.metrics[EVALUATE]["fid_judge_1k"]}})
        for e in singles[:2]
    ]
    everything("one-seed-no-interval", bare, ["clean", "dirty"], DEFAULTS)
    r = rich()
    defaults = DEFAULTS | {"augment.copies": 1, "eval.samples": 500}
    everything("rich", r, ["rich"], defaults)
    everything(
        "rich-metrics",
        r,
        ["rich"],
        defaults,
        ["fid_inception_500", "precision_judge_1k", "kid_judge_1k_mean"],
    )
    flow_gpu()
    hydra = [replace(e, params=e.params | {"hydra.run.dir": e.name}) for e in r]
    for every in (False, True):
        header, rows = overview_rows(hydra, every_metric=every)
        write(OUT / f"rich-hydra-exps-all{every}.txt", render(header, rows) + "\n")
    removed = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "issues": ["blur", "blur", "label_issue"],
            "injected": ["blur", None, None],
        }
    )
    lines = [*summary(s[0], removed), *summary(r[8], removed.drop(columns="injected"))]
    lines += [f"{e.name} {p}" for e, p in used_by([*s, *r], "ababab")]
    lines.append(find(r, r[3].rev[:8]).name)
    write(OUT / "lineage.txt", "\n".join(lines) + "\n")


def edge_zero_noise() -> None:
    """Seeds that agree exactly: pooled SD 0, so any nonzero delta exceeds it (plot colour)."""
    exps = [
        experiment(f"zero-{2 * i + seed + 1}", m, True, seed, fid)
        for i, (m, fid) in enumerate(((0.0, 50.0), (0.3, 60.0)))
        for seed in (0, 1)
    ]
    everything("edge-zero-noise", exps, ["zero"], DEFAULTS)


if __name__ == "__main__":
    main()
    edge_zero_noise()
