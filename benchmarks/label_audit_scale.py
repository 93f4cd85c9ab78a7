"""The label audit's time as images grow: grey 32×32 digits against colour 64×64 ones.

    python benchmarks/label_audit_scale.py [--n 1000] [--size 64] [--keep]

A new user's first colour folder: `--n` MNIST-5k digits, upscaled to `--size` and tinted with a
random colour each (seeded), written as PNGs in one sub-folder per class. The real pipeline runs
on it up to the audit (`dvc repro labeling` in a temporary copy of this project with `data=folder
data.channels=3 data.image_size=<size>`: ingest, reference_quality, judge, quality, labeling), and
the same number of digits as grey 32×32 files runs beside it, so the two times compare the image
size alone. Prints each stage's own time (`[stage] done in N s`) and the audit's summary line.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from project_runs import run, scratch_project, stage_seconds

from datamatters.data.mnist5k import Mnist5kSource

AUDIT = re.compile(r"^\[labeling\] (.*audit of .*)$", re.M)


def write_digits(folder: Path, n: int, size: int, colour: bool, seed: int = 0) -> None:
    """`n` digits, evenly spaced over MNIST-5k (every class alike), as `size`×`size` PNGs,
    tinted if `colour`."""
    rng = np.random.default_rng(seed)
    items = list(Mnist5kSource().items())
    for index, item in enumerate(items[:: max(1, len(items) // n)][:n]):
        grey = Image.fromarray(item.open.pixels).resize((size, size), Image.BILINEAR)
        picture = grey
        if colour:
            tint = rng.uniform(0.3, 1.0, size=3)
            pixels = np.asarray(grey, dtype=np.float32)[..., None] * tint
            picture = Image.fromarray(pixels.round().astype(np.uint8), mode="RGB")
        path = folder / str(item.label) / f"{index:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)


def run_to_labeling(work: Path, folder: Path, channels: int, size: int) -> str:
    overrides = ["data=folder", f"data.path={folder}", f"data.channels={channels}"]
    scratch_project(work, [*overrides, f"data.image_size={size}"])
    return run(["dvc", "repro", "labeling"], work)[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="datamatters-audit-"))
    for name, channels, size in (("grey", 1, 32), ("colour", 3, args.size)):
        folder = work / f"{name}-images"
        write_digits(folder, args.n, size, colour=channels == 3)
        output = run_to_labeling(work / name, folder, channels, size)
        times = ", ".join(
            f"{stage} {seconds} s" for stage, seconds in stage_seconds(output).items()
        )
        print(f"{args.n} {name} {size}x{size} images: {times}")
        print("   ", *AUDIT.findall(output))
    if args.keep:
        print("kept under", work)
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
