"""Ground truth on both sides of the split: defects made before it, found after it.

    python benchmarks/split_ground_truth.py [--fraction 0.01] [--seeds 0 1 2] [--keep]
    python benchmarks/split_ground_truth.py -S reference.leak.enabled=false \
        -S reference.quality.enabled=false       # the yardstick unguarded, for comparison

`ingest.corrupt` only ever corrupts the train pool, so it cannot measure the reference split's
checks. This benchmark does what a user's own folder does: MNIST-5k with every image-level defect
kind injected at `--fraction` of the images (blur, noise, dark, light, blank, odd size, photos,
undecodable files, exact and near copies) is written as a folder of real files first; then the
real pipeline (`dvc repro quality` in a temporary copy of this project: ingest, reference_quality,
judge, quality) splits and checks it. Defects and copy pairs fall on both sides.

Scores, pooled over the seeds (each seed draws other images to corrupt):
- per split, recall per kind: removed defective files / defective files on that side, and the
  precision of removal: removed rows that are defects / removed rows;
- copies as pairs: a pair is resolved when its two images are not both used (kept in the train
  pool or kept in the reference split); counted apart for pairs within train, within reference,
  and straddling the split.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from corrupted_folder import COPY_KINDS, write_files
from project_runs import run, scratch_project

from datamatters.data.corrupt import KINDS, inject
from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.quality.report import NOT_QUALITY_KINDS

IMAGE_KINDS = [k for k in KINDS if k not in NOT_QUALITY_KINDS]


def make_folder(folder: Path, fraction: float, seed: int) -> pd.DataFrame:
    """MNIST-5k with defects, as files; a vanishing reference fraction keeps every digit."""
    digits = ingest(list(Mnist5kSource().items()), 32, 1, 1e-9, 0).train
    corrupted, _ = inject(digits, {kind: fraction for kind in IMAGE_KINDS}, seed=seed)
    return write_files(corrupted, folder)


def run_pipeline(
    work: Path, folder: Path, overrides: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`dvc repro quality` on `folder` in a fresh copy of the project; the two checked manifests."""
    scratch_project(work, ["data=folder", f"data.path={folder}", "data.channels=1", *overrides])
    run(["dvc", "repro", "quality"], work)
    return (
        pd.read_parquet(work / "data" / "quality" / "manifest.parquet"),
        pd.read_parquet(work / "data" / "reference" / "manifest.parquet"),
    )


def outcome(truth: pd.DataFrame, train: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The truth table with each file's side, whether it is used, and why it was removed."""
    rows = pd.concat([train.assign(side="train"), reference.assign(side="reference")])
    rows = rows.set_index("source")[["side", "keep", "issues"]]
    out = truth.join(rows, on="path")
    out["issues"] = out["issues"].map(lambda issues: ",".join(issues))
    return out


def split_scores(files: pd.DataFrame) -> list[str]:
    """Per side: recall per non-copy kind and the precision of what was removed."""
    lines = []
    for side in ("reference", "train"):
        on_side = files[files["side"] == side]
        removed = ~on_side["keep"]
        # removing either image of a copy pair resolves it, so both count as rightly removed
        paired = on_side["path"].isin(files.loc[files["kind"].isin(COPY_KINDS), "original"])
        defect = on_side["kind"].notna() | paired
        right, wrong = (removed & defect).sum(), (removed & ~defect).sum()
        lines.append(
            f"{side}: {len(on_side)} files, {int(on_side['kind'].notna().sum())} defective; "
            f"removed {int(removed.sum())}, precision {right / removed.sum():.3f}, "
            f"clean removed {wrong} ({wrong / (~defect).sum():.2%})"
        )
        for kind in [k for k in IMAGE_KINDS if k not in COPY_KINDS]:
            of_kind = on_side["kind"] == kind
            found = (of_kind & removed).sum()
            lines.append(
                f"  {kind:<16} recall {found / of_kind.sum():.3f} ({found}/{of_kind.sum()})"
            )
    return lines


def pair_scores(files: pd.DataFrame) -> list[str]:
    """Copy pairs, resolved when not both images are used, by where their two images fell."""
    by_path = files.set_index("path")
    lines = []
    for kind in COPY_KINDS:
        copies = files[files["kind"] == kind]
        if copies.empty:
            continue
        original = by_path.loc[copies["original"]]
        where = pd.Series(
            [
                a if a == b else "straddling"
                for a, b in zip(copies["side"], original["side"], strict=True)
            ],
            index=copies.index,
        )
        resolved = ~(copies["keep"].to_numpy() & original["keep"].to_numpy())
        total = f"{resolved.sum()}/{len(copies)}"
        lines.append(f"{kind} pairs: resolved {resolved.mean():.3f} ({total})")
        for place in ("train", "reference", "straddling"):
            here = (where == place).to_numpy()
            if here.any():
                share = f"{resolved[here].sum()}/{here.sum()}"
                lines.append(f"  {place:<10} {resolved[here].mean():.3f} ({share})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="a param")
    args = parser.parse_args()
    results = []
    for seed in args.seeds:
        work = Path(tempfile.mkdtemp(prefix=f"datamatters-split-gt-{seed}-"))
        truth = make_folder(work / "images", args.fraction, seed)
        train, reference = run_pipeline(work / "project", work / "images", args.overrides)
        results.append(outcome(truth, train, reference).assign(seed=seed))
        print(f"seed {seed}: {len(truth)} files, pipeline done ({work})", flush=True)
        if not args.keep:
            shutil.rmtree(work)
    files = pd.concat(results, ignore_index=True)
    files["path"] = files["seed"].astype(str) + ":" + files["path"]
    files["original"] = files["seed"].astype(str) + ":" + files["original"]
    print(f"{args.fraction:.0%} of each kind, seeds {args.seeds}, {args.overrides}, pooled:")
    print("\n".join(split_scores(files) + pair_scores(files)))


if __name__ == "__main__":
    main()
