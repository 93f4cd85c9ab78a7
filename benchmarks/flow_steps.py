"""A flow's judge FID against the ODE sampler's method and number of steps, on one checkpoint.

    python benchmarks/flow_steps.py --checkpoint <generator.pt of a model=flow run>
                                    [--steps 2 4 8 20 50] [--methods euler heun]
    python benchmarks/flow_steps.py --train [-S train.kimg=...]   # trains one first

With `--train`, runs the real `train` stage with `model=flow` on the default data of `--project`
(after `dvc repro`: `data/augmented`, `models/judge.pt`, `data/reference_features`) and keeps its
checkpoint at `--checkpoint`. Then draws `eval.metrics.num_samples` images with each method and
step count from the same seeded noise and prints the judge FID (the evaluate stage's features and
reference), the network calls per image and the sampling time: what fewer steps cost in quality.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from candidates import ROOT, run_stage

from datamatters.config import write_params
from datamatters.features import reference_cache
from datamatters.features.extract import extract, to_uint8
from datamatters.features.judge import JudgeFeatures
from datamatters.models.checkpoint import load_checkpoint
from datamatters.models.flow import METHODS
from datamatters.scores.frechet import fid

SEED = 0
SAMPLES = 1000


def train(project: Path, checkpoint: Path, overrides: list[str], threads: int) -> None:
    with tempfile.TemporaryDirectory(prefix="datamatters-flow-") as tmp:
        work = Path(tmp)
        write_params(work / "params.yaml", ["model=flow", *overrides], ROOT / "conf")
        run_stage(
            "train",
            ["--data", str(project / "data" / "augmented"), "--checkpoint", str(checkpoint)]
            + ["--live-dir", "live", "--samples", "samples.png", "--resume-dir", "resume"]
            + ["--judge", str(project / "models" / "judge.pt")]
            + ["--reference-features", str(project / "data" / "reference_features")],
            work,
            threads,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=Path("flow-generator.pt"))
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="the train stage's CPU threads")
    parser.add_argument("-S", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 20, 50])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=["euler", "heun"])
    args = parser.parse_args()

    if args.train:
        train(args.project.resolve(), args.checkpoint.resolve(), args.overrides, args.threads)
    model = load_checkpoint(args.checkpoint)
    judge = JudgeFeatures(load_checkpoint(args.project / "models" / "judge.pt"))
    reference, _ = reference_cache.load(args.project / "data" / "reference_features", "judge")
    print("| method | steps | network calls per image | fid_judge_1k | sampling s |")
    print("|---|---|---|---|---|")
    for method in args.methods:
        for steps in args.steps:
            model.method, model.steps = method, steps
            started = time.perf_counter()
            images = to_uint8(model.sample(SAMPLES, seed=SEED))
            seconds = time.perf_counter() - started
            score = fid(reference, extract(judge, images))
            calls = steps * METHODS[method]
            print(f"| {method} | {steps} | {calls} | {score:.1f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
