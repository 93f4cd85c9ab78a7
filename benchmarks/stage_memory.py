"""Peak resident memory and time of the data stages on folders of colour scenes, by size.

    python benchmarks/stage_memory.py [--n 10000 40000 160000] [--stages ingest ...] [-S k=v]
    python benchmarks/stage_memory.py --n 640000 --first-run --stages ingest reference_quality ...

For each `--n`, writes that many distinct 64×64 colour scenes (`scenes.write_scenes`), makes a
scratch copy of this project on them (`data=folder data.channels=3 data.image_size=64`, plus any
`-S` overrides), runs `dvc repro` up to the last of `--stages` so every input exists, then runs
each stage's own command from `dvc.yaml` again, alone, in a fresh process, and reports its wall
time and the peak resident memory of the largest process it started (the stage itself or one of
its workers), with the pixels' own size for scale, and how many times over `data/` holds them,
alone and with the DVC cache (a file hard-linked into both counted once).
With several sizes it ends with each stage's growth exponent between consecutive sizes
(log time ratio / log size ratio: 1.0 is linear). Run it from two checkouts to compare releases.

`--first-run` measures each stage once, where the pipeline first runs it, to halve the time at
sizes where every run is long: `dvc repro --single-item <stage>` for each of `--stages` in turn
(so they must name every stage up to the last, in pipeline order, `judge` included). The time is
then the stage's own (`[stage] done in N s`), and the peak that of the largest process, DVC's
included (DVC hashing the outputs holds far less than a data stage).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import yaml
from project_runs import project_env, run, scratch_project, stage_seconds
from scenes import write_scenes

MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1], shell=True, check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak(project: Path, command: str, stage: str | None = None) -> tuple[float, int]:
    """Seconds and peak resident KiB of the largest process `command` started; with `stage`,
    the seconds that stage printed as its own."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, command],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        env=project_env(project),
    )
    seconds = time.perf_counter() - started
    if stage is not None:
        seconds = stage_seconds(done.stdout + done.stderr)[stage]
    return seconds, int(done.stdout.strip().splitlines()[-1])


def on_disk(paths: Iterable[Path]) -> int:
    """Bytes of the files at `paths`, a file linked from several of them counted once."""
    sizes = {}
    for path in paths:
        if path.is_file():
            info = path.stat()
            sizes[(info.st_dev, info.st_ino)] = info.st_size
    return sum(sizes.values())


def measure(
    n: int, stages: list[str], overrides: list[str], first_run: bool = False
) -> dict[str, dict[str, float]]:
    """Each stage's seconds and peak MiB on `n` scenes, and `data/`'s size in pixel copies."""
    work = Path(tempfile.mkdtemp(prefix="datamatters-memory-"))
    started = time.perf_counter()
    write_scenes(work / "images", n, 64, 0.01, 0)
    print(f"{n:>8} scenes written in {time.perf_counter() - started:.0f} s", flush=True)
    folder = ["data=folder", f"data.path={work / 'images'}", "data.channels=3"]
    project = scratch_project(work / "project", [*folder, "data.image_size=64", *overrides])
    results = {}
    if first_run:
        for stage in stages:
            results[stage] = _record(n, stage, *peak(project, f"dvc repro -s {stage}", stage))
    else:
        run(["dvc", "repro", stages[-1]], project)
    pixels = n * 64 * 64 * 3
    # as `dvc repro` left them: the runs below write outputs DVC has not linked to its cache
    stored = on_disk((project / "data").rglob("*.npy"))
    cached = on_disk([*(project / "data").rglob("*.npy"), *(project / ".dvc/cache").rglob("*")])
    commands = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for stage in [] if first_run else stages:
        results[stage] = _record(n, stage, *peak(project, commands[stage]["cmd"]))
    results["data/"] = {
        "pixel_copies": round(stored / pixels, 2),
        "with_cache": round(cached / pixels, 2),
        "pixels_mib": pixels / 2**20,
    }
    print(
        f"{n:>8} images: {pixels / 2**20:.0f} MiB of pixels; data/ holds {stored / pixels:.2f}x, "
        f"data/ and the DVC cache together {cached / pixels:.2f}x"
    )
    shutil.rmtree(work)
    return results


def _record(n: int, stage: str, seconds: float, kib: int) -> dict[str, float]:
    print(f"{n:>8} {stage:<18} {seconds:>8.1f} s {kib / 1024:>8.0f} MiB peak", flush=True)
    return {"seconds": round(seconds, 1), "peak_mib": round(kib / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[10_000])
    parser.add_argument("--stages", nargs="+", default=["ingest", "reference_quality"])
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="key=value")
    parser.add_argument(
        "--first-run", action="store_true", help="measure each stage where it first runs"
    )
    args = parser.parse_args()
    by_size = {n: measure(n, args.stages, args.overrides, args.first_run) for n in args.n}
    sizes = list(by_size)
    for stage in args.stages:
        growth = [
            math.log(by_size[b][stage]["seconds"] / by_size[a][stage]["seconds"]) / math.log(b / a)
            for a, b in itertools.pairwise(sizes)
        ]
        print(f"{stage:<18} time grows as N^" + ", N^".join(f"{g:.2f}" for g in growth))
    print(json.dumps(by_size))


if __name__ == "__main__":
    main()
