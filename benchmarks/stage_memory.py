"""Peak resident memory and time of the data stages on a folder of colour scenes.

    python benchmarks/stage_memory.py [--n 10000] [--stages ingest reference_quality]

Writes `--n` distinct 64×64 colour scenes (`scenes.write_scenes`), makes a scratch copy of this
project on them (`data=folder data.channels=3 data.image_size=64`), runs `dvc repro` up to the
last of `--stages` so every input exists, then runs each stage's own command from `dvc.yaml`
again, alone, in a fresh process, and reports its wall time and the peak resident memory of the
largest process it started (the stage itself or one of its workers), with the pixels' own size
for scale. Run it from two checkouts to compare releases side by side.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from project_runs import project_env, run, scratch_project
from scenes import write_scenes

MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1], shell=True, check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak(project: Path, command: str) -> tuple[float, int]:
    """Seconds and peak resident KiB of the largest process `command` started."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, command],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        env=project_env(project),
    )
    return time.perf_counter() - started, int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--stages", nargs="+", default=["ingest", "reference_quality"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="datamatters-memory-"))
    write_scenes(work / "images", args.n, 64, 0.01, 0)
    overrides = ["data=folder", f"data.path={work / 'images'}", "data.channels=3"]
    project = scratch_project(work / "project", [*overrides, "data.image_size=64"])
    run(["dvc", "repro", args.stages[-1]], project)
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    pixels_mib = args.n * 64 * 64 * 3 / 2**20
    results = {}
    for stage in args.stages:
        seconds, kib = peak(project, stages[stage]["cmd"])
        results[stage] = {"seconds": round(seconds, 1), "peak_mib": round(kib / 1024)}
        print(f"{stage:<18} {seconds:>7.1f} s {kib / 1024:>8.0f} MiB peak", flush=True)
    print(f"{args.n} images, {pixels_mib:.0f} MiB of pixels")
    print(json.dumps(results))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
