"""Re-encoded near-copies in a folder of colour scenes: found on both sides of the split?

    python benchmarks/colour_copies.py [--n 10000] [--copies 0.01] [--seed 0] [--keep]

Writes `--n` files with `scenes.write_scenes` (distinct 64×64 colour scenes; a `--copies` share of
them re-saved as JPEG 75-95 with brightness ±8 and contrast ±5%) and runs the real pipeline up to
`quality` on them (`dvc repro quality` in a scratch copy of this project, `data=folder
data.channels=3 data.image_size=64`). Scores, as `split_ground_truth.py` does: a copy pair is
resolved when its two images are not both used, counted within the train pool, within the
reference split and straddling them; and the clean scenes removed on each side, by reason.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from project_runs import run, scratch_project, stage_seconds
from scenes import write_scenes
from split_ground_truth import outcome, pair_scores


def clean_removed(files: pd.DataFrame) -> list[str]:
    """Per side, the scenes neither copied nor copies that were removed anyway, by check."""
    paired = files["path"].isin(files["original"].dropna()) | files["kind"].notna()
    lines = []
    for side in ("train", "reference"):
        clean = files[(files["side"] == side) & ~paired]
        removed = clean[~clean["keep"]]
        reasons = removed["issues"].str.split(",").explode().value_counts().to_dict()
        lines.append(f"{side}: {len(removed)} of {len(clean)} clean scenes removed {reasons}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--copies", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="a param")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="datamatters-colour-copies-"))
    truth = write_scenes(work / "images", args.n, 64, args.copies, args.seed)
    project = scratch_project(
        work / "project",
        [
            "data=folder",
            f"data.path={work / 'images'}",
            "data.channels=3",
            "data.image_size=64",
            *args.overrides,
        ],
    )
    _, output = run(["dvc", "repro", "quality"], project)
    train = pd.read_parquet(project / "data" / "quality" / "manifest.parquet")
    reference = pd.read_parquet(project / "data" / "reference" / "manifest.parquet")
    files = outcome(truth, train, reference)
    print(f"{len(truth)} files, {int(truth['kind'].notna().sum())} near-copies ({work})")
    print("\n".join(pair_scores(files)))
    print("\n".join(clean_removed(files)))
    print(f"stage seconds: {stage_seconds(output)}")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
