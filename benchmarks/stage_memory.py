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
(so they must name every stage up to the last, in pipeline order, `judge` included), each
stage's command in the scratch `dvc.yaml` wrapped to report the peak of its own processes. The
time is the stage's own (`[stage] done in N s`); the peak with DVC's own process is reported
beside it (DVC hashing a folder of 640,000 files as ingest's dependency holds more than ingest).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import shlex
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

PEAK_OF = (  # runs a command and reports the peak of the largest process it started
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1], shell=True).returncode; "
    "print(f'[peak] {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} KiB'); sys.exit(code)"
)
PEAK_LINE = re.compile(r"^\[peak\] (\d+) KiB$", re.M)


def peak(project: Path, command: str) -> tuple[float, list[int], str]:
    """Seconds `command` took, every peak (KiB) reported while it ran, its own last, and what
    it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PEAK_OF, command],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        env=project_env(project),
    )
    output = done.stdout + done.stderr
    return time.perf_counter() - started, [int(k) for k in PEAK_LINE.findall(output)], output


def wrap_stages(project: Path, stages: list[str]) -> None:
    """Make each of `stages` report its own peak (`[peak] N KiB`) when DVC runs it."""
    path = project / "dvc.yaml"
    pipeline = yaml.safe_load(path.read_text())
    for stage in stages:
        command = pipeline["stages"][stage]["cmd"]
        pipeline["stages"][stage]["cmd"] = (
            f"python -c {shlex.quote(PEAK_OF)} {shlex.quote(command)}"
        )
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))


def first_run(project: Path, stage: str) -> dict[str, float]:
    """`stage` run by `dvc repro`: its own seconds and peak, and the peak with DVC's."""
    _, (own, with_dvc), output = peak(project, f"dvc repro --single-item {stage}")
    return {"seconds": stage_seconds(output)[stage], "own": own, "with_dvc": with_dvc}


def on_disk(paths: Iterable[Path]) -> int:
    """Bytes of the files at `paths`, a file linked from several of them counted once."""
    sizes = {}
    for path in paths:
        if path.is_file():
            info = path.stat()
            sizes[(info.st_dev, info.st_ino)] = info.st_size
    return sum(sizes.values())


def measure(
    n: int,
    stages: list[str],
    overrides: list[str],
    first_run_only: bool = False,
    scenes: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Each stage's seconds and peak MiB on `n` scenes (written anew, or the folder `scenes`),
    and `data/`'s size in pixel copies."""
    work = Path(tempfile.mkdtemp(prefix="datamatters-memory-"))
    if scenes is None:
        scenes = work / "images"
        started = time.perf_counter()
        write_scenes(scenes, n, 64, 0.01, 0)
        print(f"{n:>8} scenes written in {time.perf_counter() - started:.0f} s", flush=True)
    folder = ["data=folder", f"data.path={scenes}", "data.channels=3"]
    project = scratch_project(work / "project", [*folder, "data.image_size=64", *overrides])
    results = {}
    if first_run_only:
        wrap_stages(project, stages)
        for stage in stages:
            measured = first_run(project, stage)
            results[stage] = _record(n, stage, measured["seconds"], measured["own"])
            results[stage]["with_dvc_mib"] = round(measured["with_dvc"] / 1024)
            print(f"{'':>8} {'':<18} {measured['with_dvc'] / 1024:>19.0f} MiB with DVC's")
    else:
        run(["dvc", "repro", stages[-1]], project)
    pixels = n * 64 * 64 * 3
    # as `dvc repro` left them: the runs below write outputs DVC has not linked to its cache
    stored = on_disk((project / "data").rglob("*.npy"))
    cached = on_disk([*(project / "data").rglob("*.npy"), *(project / ".dvc/cache").rglob("*")])
    commands = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for stage in [] if first_run_only else stages:
        seconds, (kib,), _ = peak(project, commands[stage]["cmd"])
        results[stage] = _record(n, stage, seconds, kib)
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
    parser.add_argument(
        "--scenes", type=Path, help="a folder `scenes.py --n N` wrote, for a single --n N"
    )
    args = parser.parse_args()
    if args.scenes and len(args.n) != 1:
        parser.error("--scenes is the folder of one size: give one --n")
    by_size = {
        n: measure(n, args.stages, args.overrides, args.first_run, args.scenes) for n in args.n
    }
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
