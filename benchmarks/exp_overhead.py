"""DVC's own time per experiment: what an experiment costs beyond its stages' work.

    python benchmarks/exp_overhead.py [--clone DIR] [--runs 2] [--kimg 6.4]

Works in a clone of the committed HEAD where the pipeline has run: `--clone` reuses one (e.g. the
one `benchmarks/repro_time.py --keep` leaves), otherwise a fresh clone is made and `dvc repro`
runs first. Then it runs experiments that change only the training seed, so `train` and
`evaluate` re-run (with seeds never used before, so DVC's run cache cannot skip them) and every
other stage is unchanged, each way DVC runs them: in the workspace
(`dvc exp run`), in a temporary copy (`--temp`), and through the queue (`--queue`, then
`dvc queue start`), as a sweep does. The training budget is cut to `--kimg` and Inception is
left out of evaluate: only the time around the stages is measured here.

Each experiment's wall time splits into the stages' own work (each prints `[stage] done in N s`),
the stage processes' start-up (Python and the imports before `main`, timed as
`python stages/<stage>.py --help`) and the rest, DVC's own: copying the workspace, hashing,
restoring cached outputs, committing the experiment.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from project_runs import RAN, run, stage_seconds


def start_up(clone: Path, stage: str, repeats: int = 3) -> float:
    """Median seconds to start a stage script and import what it needs (`--help` exits there)."""
    times = [
        run([sys.executable, f"stages/{stage}.py", "--help"], clone)[0] for _ in range(repeats)
    ]
    return statistics.median(times)


def wait_for_result(clone: Path, name: str) -> None:
    """Until the queue has committed the experiment `name` (its ref appears in git).

    Polled with git, not `dvc queue status`, which would take the CPU from the run it times.
    """
    refs = ["git", "for-each-ref", "--format=%(refname)", "refs/exps"]
    while not any(ref.endswith(f"/{name}") for ref in run(refs, clone)[1].split()):
        time.sleep(0.2)


def queue_output(clone: Path, name: str) -> str:
    """The queue's log of the task named `name`, once the queue has finished it."""
    while re.search(r"Running|Queued", run(["dvc", "queue", "status"], clone)[1]):
        time.sleep(2)
    return run(["dvc", "queue", "logs", name], clone)[1]


def experiment(clone: Path, mode: str, seed: int, kimg: float) -> tuple[float, str]:
    name = f"overhead-{mode}-{seed}"
    settings = [
        "-S",
        f"train.seed={seed}",
        "-S",
        f"train.kimg={kimg}",
        "-S",
        "eval.metrics.inception_samples=0",
    ]
    if mode == "queue":
        run(["dvc", "exp", "run", "--queue", "-n", name, *settings], clone)
        started = time.perf_counter()
        run(["dvc", "queue", "start"], clone)
        wait_for_result(clone, name)
        return time.perf_counter() - started, queue_output(clone, name)
    flags = ["--temp"] if mode == "temp" else []
    return run(["dvc", "exp", "run", *flags, "-n", name, *settings], clone)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--clone", type=Path, help="a clone where the pipeline has run")
    parser.add_argument("--runs", type=int, default=2, help="experiments per way of running")
    parser.add_argument(
        "--kimg", type=float, default=6.4, help="training budget per experiment (1000s of images)"
    )
    parser.add_argument("--modes", default="workspace,temp,queue")
    args = parser.parse_args()

    clone = args.clone
    if clone is None:
        clone = Path(tempfile.mkdtemp(prefix="datamatters-overhead-")) / "project"
        subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
        print(f"dvc repro in {clone}: {run(['dvc', 'repro'], clone)[0]:.0f} s")
    startup = {stage: start_up(clone, stage) for stage in ("train", "evaluate")}
    print("stage start-up (python stages/<stage>.py --help, median of 3):")
    print("   ", ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in startup.items()))

    print(f"{'way':<10}{'wall':>8}{'stages':>9}{'start-up':>10}{'DVC':>8}  stages run")
    # seeds no earlier run used, so DVC's run cache cannot restore a stage instead of running it
    seed = 1000 + int(time.time()) % 1_000_000
    for mode in args.modes.split(","):
        for _ in range(args.runs):
            seed += 1
            wall, output = experiment(clone, mode, seed, args.kimg)
            seconds = stage_seconds(output)
            work = sum(seconds.values())
            ran = sorted(set(RAN.findall(output)) | set(seconds))
            for stage in ran:
                if stage not in startup:
                    startup[stage] = start_up(clone, stage)
            launch = sum(startup[stage] for stage in ran)
            dvc = wall - work - launch
            print(
                f"{mode:<10}{wall:>7.1f}s{work:>8.1f}s{launch:>9.1f}s{dvc:>7.1f}s  {', '.join(ran)}"
            )


if __name__ == "__main__":
    main()
