"""Kill the default train stage with SIGKILL mid-run, resume it, and compare with a whole run.

    python benchmarks/resume_parity.py [--kill-after-step 1000] [-S override ...]

Trains the default config (params.yaml's, plus any -S overrides) twice in scratch directories on
this checkout's `data/augmented`: once uninterrupted, once killed as soon as the resumable
checkpoint at or after `--kill-after-step` exists and then started again. Prints both
`models/generator.pt` md5s and the time of each run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from stage_sandbox import sandbox, train, train_command, train_env

from datamatters.models.resume import checkpoint_step


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def kill_at(directory: Path, step: int) -> float:
    """Start training, SIGKILL it once a checkpoint at `step` or later is on disk."""
    checkpoint = directory / "checkpoints" / "train" / "last.ckpt"
    started = time.perf_counter()
    process = subprocess.Popen(
        train_command(), cwd=directory, env=train_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    while process.poll() is None:
        if checkpoint.exists() and checkpoint_step(checkpoint) >= step:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return time.perf_counter() - started
        time.sleep(0.2)
    raise SystemExit("training finished before it could be killed: lower --kill-after-step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kill-after-step", type=int, default=1000)
    parser.add_argument("-S", "--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        whole, killed = (sandbox(Path(tmp) / name, args.overrides) for name in ("whole", "killed"))
        started = time.perf_counter()
        train(whole)
        whole_time = time.perf_counter() - started
        killed_time = kill_at(killed, args.kill_after_step)
        started = time.perf_counter()
        resumed = train(killed)
        resumed_time = time.perf_counter() - started
        line = next(line for line in resumed.stdout.splitlines() if "resuming" in line)
        print(line)
        a, b = md5(whole / "models/generator.pt"), md5(killed / "models/generator.pt")
        print(f"uninterrupted: {a}  ({whole_time:.1f} s)")
        timing = f"killed after {killed_time:.1f} s, resumed in {resumed_time:.1f} s"
        print(f"killed+resumed: {b}  ({timing})")
        print("identical" if a == b else "DIFFERENT")


if __name__ == "__main__":
    main()
