"""Wall time of the train stage with `trainer=ddp` (2 CPU processes, gloo) against `trainer=cpu`.

    python benchmarks/ddp_time.py [--kimg 12.8]

The same training images and batch size on this checkout's `data/augmented`, per-epoch FID off.
On a 2-core machine no speed-up is expected (the two processes share the cores and add gradient
all-reduces); it shows the multi-process path runs the real stage.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from stage_sandbox import sandbox, train

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kimg", type=float, default=12.8)
    args = parser.parse_args()
    common = [f"train.kimg={args.kimg}", "train.fid_samples=0"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in (("cpu", ["trainer=cpu"]), ("ddp", DDP)):
            directory = sandbox(Path(tmp) / name, [*overrides, *common])
            started = time.perf_counter()
            train(directory)
            print(f"trainer={name}: {args.kimg} kimg in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
