"""Does a model train without collapse on a new user's first colour folder?

    python benchmarks/colour_training.py [--model dcgan flow] [--n 2000] [--size 64]
                                         [--out reports/colour] [-S key=value ...]

Writes `--n` MNIST-5k digits, upscaled to `--size` and tinted with a seeded random colour each,
as PNGs in one sub-folder per class (`label_audit_scale.write_digits`), and runs the real pipeline
on it (`dvc repro evaluate` in a scratch copy of this project with `data=folder data.channels=3
data.image_size=<size>`), once per `--model`. Reads the per-epoch judge FID curve the train stage
logged and says whether, over the last quarter of training, it stayed within 1.5x of its best
(the collapse test), and copies each final sample grid to `<out>-<model>.png` to look at.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
from pathlib import Path

from label_audit_scale import write_digits
from project_runs import run, scratch_project, stage_seconds

CURVE = Path("metrics/train/plots/metrics")
STABLE_WITHIN = 1.5


def fid_curve(project: Path) -> list[float]:
    """The per-epoch judge FID the train stage logged, in epoch order."""
    (path,) = (project / CURVE).glob("fid_judge_*.tsv")
    with path.open() as handle:
        return [float(row[path.stem]) for row in csv.DictReader(handle, delimiter="\t")]


def stability(curve: list[float]) -> dict:
    """The worst of the last quarter of epochs against the best epoch of the whole run."""
    tail = curve[-max(1, len(curve) // 4) :]
    ratio = max(tail) / min(curve)
    return {
        "epochs": len(curve),
        "best": min(curve),
        "last_quarter_worst": max(tail),
        "ratio": round(ratio, 3),
        "stable": ratio <= STABLE_WITHIN,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", nargs="+", default=["dcgan", "flow"])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("reports/colour"))
    parser.add_argument(
        "-S",
        dest="overrides",
        action="append",
        default=[],
        help="another Hydra override for every run, e.g. -S train.kimg=40",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="datamatters-colour-"))
    folder = work / "images"
    write_digits(folder, args.n, args.size, colour=True)
    results = {}
    for model in args.model:
        project = scratch_project(
            work / model,
            [
                "data=folder",
                f"data.path={folder}",
                "data.channels=3",
                f"data.image_size={args.size}",
                f"model={model}",
                *args.overrides,
            ],
        )
        # DVCLive in the train stage reads the repository's HEAD: give the scratch repo one
        run(["git", "add", "-A"], project)
        run(["git", "commit", "-qm", "scratch project"], project)
        _, output = run(["dvc", "repro", "evaluate"], project)
        metrics = json.loads((project / "metrics" / "evaluate.json").read_text())
        results[model] = stability(fid_curve(project)) | {
            "fid_judge_1k": metrics.get("fid_judge_1k"),
            "train_seconds": stage_seconds(output).get("train"),
        }
        grid = args.out.with_name(f"{args.out.name}-{model}.png")
        grid.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project / "plots" / "samples.png", grid)
        print(f"{model}: {results[model]}; grid {grid}", flush=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
