"""Where the quality stage's memory goes: peak resident memory of each check, in one process.

    python benchmarks/quality_phases.py [--n 160000]

Writes `--n` distinct 64×64 colour scenes (1% near-copies), runs the pipeline up to the judge and
`reference_quality` on them as a folder (one judge epoch: its training is not measured), then
runs what the quality stage runs, in this process: the judge's features, then each check. For
each it prints this process's resident memory when it started, the highest seen while it ran
(sampled every 10 ms) and when it ended. What a check keeps is end minus start; what it needs
while it runs is peak minus start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from project_runs import run, scratch_project
from scenes import write_scenes

from datamatters.data.contract import read_stage_data
from datamatters.features.judge import judge_features
from datamatters.models.checkpoint import load_stage_input
from datamatters.parallel import use_executor
from datamatters.quality.assess import assess, configured_check, configured_checks
from datamatters.quality.checks import QualityContext
from datamatters.stage import load_params


class ResidentPeak:
    """This process's resident memory, and the highest it reached since `reset`."""

    def __init__(self) -> None:
        self.peak = self.now()
        threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def now() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20

    def reset(self) -> float:
        self.peak = self.now()
        return self.peak

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            time.sleep(0.01)


def phase(memory: ResidentPeak, name: str, fn: Callable[..., Any], *args: Any) -> Any:
    start, started = memory.reset(), time.perf_counter()
    result = fn(*args)
    print(
        f"{name:<18} start {start:6.0f}  peak {memory.peak:6.0f}  end {memory.now():6.0f} MiB"
        f"  {time.perf_counter() - started:6.1f} s",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=160_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="datamatters-quality-phases-"))
    write_scenes(work / "images", args.n, 64, 0.01, 0)
    folder = [f"data.path={work / 'images'}", "data.channels=3", "data.image_size=64"]
    project = scratch_project(work / "project", ["data=folder", *folder, "judge.max_epochs=1"])
    run(["dvc", "repro", "judge", "reference_quality"], project)

    os.chdir(project)
    memory = ResidentPeak()
    params = load_params("quality", "reference.leak", "executor")
    data = read_stage_data("data/raw")
    reference = read_stage_data("data/reference")
    checks = configured_checks(params["quality"], "quality") | {
        "reference_leak": configured_check(params["reference.leak"], "reference.leak")
    }
    judge = load_stage_input("models/judge.pt")
    features = phase(memory, "judge features", judge_features, judge, data.images)
    for name, check in checks.items():
        check.run = lambda inputs, name=name, measured=check.run: phase(
            memory, name, measured, inputs
        )
    with use_executor(instantiate(params["executor"])):
        context = QualityContext(features, reference, scratch=Path("data"))  # as the stage has it
        phase(memory, "all checks", assess, data, checks, context)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
