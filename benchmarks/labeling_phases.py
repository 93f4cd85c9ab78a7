"""Where the label audit's memory goes as images grow: each step of the labeling stage, in one
process.

    python benchmarks/labeling_phases.py [--n 10000] [-S key=value ...]

Writes `--n` distinct 64×64 colour scenes (1% near-copies), runs the pipeline up to `quality` on
them as a folder (one judge epoch: its training is not measured), then runs what the labeling
stage runs, in this process, step by step: reading the quality stage's manifest, each fold's
fine-tuning and prediction, cleanlab's verdict, the report and the written manifest. For each it
prints this process's resident memory when it started, the highest seen while it ran and when
it ended (`quality_phases.ResidentPeak`), and at the end the highest of the whole run. Run it
at two sizes and subtract: what grows with the images is what a step keeps per image. `-S`
overrides go to the scratch project's params (`-S labeling.audit.classifier.max_epochs=1`:
one fine-tuning epoch per fold instead of two, half the time).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from project_runs import run, scratch_project
from quality_phases import ResidentPeak, phase
from scenes import write_scenes

from datamatters.data.contract import read_stage_data, write_stage_data
from datamatters.labeling import audit, labels
from datamatters.labeling.report import label_report
from datamatters.models.checkpoint import load_stage_input
from datamatters.stage import load_params


def measured(memory: ResidentPeak, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, printing its memory each time it runs (a fold's `_fit`, say)."""
    return lambda *args: phase(memory, name, fn, *args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="key=value")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="datamatters-labeling-phases-"))
    write_scenes(work / "images", args.n, 64, 0.01, 0)
    folder = [f"data.path={work / 'images'}", "data.channels=3", "data.image_size=64"]
    overrides = ["data=folder", *folder, "judge.max_epochs=1", *args.overrides]
    project = scratch_project(work / "project", overrides)
    run(["dvc", "repro", "quality"], project)

    os.chdir(project)
    memory = ResidentPeak()
    cfg = load_params("labeling")["labeling"]
    L.seed_everything(cfg.audit.seed, workers=True, verbose=False)
    columns = ("id", "label", "keep", "issues")
    data = phase(memory, "read manifest", read_stage_data, "data/quality", columns)
    start = load_stage_input("models/judge.pt")
    for module, name in ((audit, "_fit"), (audit, "predict_rows"), (labels, "find_label_issues")):
        setattr(module, name, measured(memory, name, getattr(module, name)))
    carried = phase(memory, "carry labels", labels.carry_labels, data, cfg.classes, "data/quality")
    labeled, summary = labels.audit_labels(carried, cfg, start)
    phase(memory, "report", label_report, labeled.manifest, summary)
    phase(memory, "write manifest", write_stage_data, "data/labeled-phases", labeled, False)
    highest = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.n} images, {summary.audited} audited; resident at the end {memory.now():.0f} MiB, "
        f"the highest {highest:.0f} MiB"
    )
    os.chdir(work.parent)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
