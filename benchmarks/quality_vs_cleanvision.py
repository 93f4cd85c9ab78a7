"""The quality stage against cleanvision 0.3.7 on the same files: throughput and ground truth.

    pip install cleanvision==0.3.7   # the comparison only; not a project dependency
    python benchmarks/quality_vs_cleanvision.py [--fraction 0.01] [--judge models/judge.pt]

MNIST-5k's train pool gets every image-level corruption kind injected at `--fraction`, each row is
written as a real file (PNG; odd sizes at their odd size; undecodable ones truncated), and both
tools scan that folder. Ours is timed from file to decision: decoding, scoring and flagging.
Both are timed after their modules are imported (ours: torch, scikit-learn), the way a long scan
would see them; `DATAMATTERS_WORKERS=1` times ours in one process.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import sklearn.neighbors  # noqa: F401 - imported before the clock starts, as cleanvision is
from corrupted_folder import write_files
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from datamatters.config import CONFIG_DIR
from datamatters.data.contract import StageData
from datamatters.data.corrupt import KINDS, inject
from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.data.sources import FolderSource
from datamatters.features.judge import judge_features
from datamatters.models.checkpoint import load_checkpoint
from datamatters.parallel import available_workers
from datamatters.quality.assess import assess
from datamatters.quality.checks import QualityContext
from datamatters.quality.report import NOT_QUALITY_KINDS, ground_truth_scores

IMAGE_KINDS = [k for k in KINDS if k not in NOT_QUALITY_KINDS]
CLEANVISION_OFF_FOR_MNIST = ("grayscale", "low_information")


def corrupted_pool(fraction: float) -> StageData:
    pool = ingest(list(Mnist5kSource().items()), 32, 1, 0.2, 0).train
    return inject(pool, {kind: fraction for kind in IMAGE_KINDS}, seed=0)[0]


def run_ours(folder: Path, judge: Path | None) -> tuple[float, pd.DataFrame]:
    with initialize_config_dir(str(CONFIG_DIR.resolve()), version_base=None):
        cfg = compose("config")
    started = time.perf_counter()
    items = list(FolderSource(str(folder)).items())
    decoded = ingest(items, 32, 1, 1e-9, 0)  # a vanishing reference fraction keeps every file
    checks = {name: instantiate(c) for name, c in cfg.quality.checks.items()}
    assessed, _ = assess(decoded.train, checks, **_context(decoded.train, judge))
    elapsed = time.perf_counter() - started
    return elapsed, assessed.manifest


def _context(pool: StageData, judge: Path | None) -> dict:
    if judge is None or not judge.is_file():
        return {"context": QualityContext()}
    return {"context": QualityContext(features=judge_features(load_checkpoint(judge), pool.images))}


def run_cleanvision(folder: Path, issue_types: dict | None) -> tuple[float, pd.DataFrame]:
    from cleanvision import Imagelab

    started = time.perf_counter()
    lab = Imagelab(data_path=str(folder), verbose=False)
    lab.find_issues(issue_types=issue_types, verbose=False)
    return time.perf_counter() - started, lab.issues


def cleanvision_scores(issues: pd.DataFrame, truth: dict[str, str | None]) -> dict:
    flagged = issues.filter(like="_issue").any(axis=1).reindex(list(truth)).fillna(False)
    injected = pd.Series(list(truth.values()), index=list(truth), dtype="string")
    return ground_truth_scores(pd.DataFrame({"keep": ~flagged, "injected": injected}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--judge", type=Path, default=Path("models/judge.pt"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="datamatters-cv-"))
    folder, readable = work / "all", work / "readable"
    folder.mkdir()
    files = write_files(corrupted_pool(args.fraction), folder)
    truth = {row.path: None if pd.isna(row.kind) else row.kind for row in files.itertuples()}
    n = len(truth)
    print(f"{n} files, {args.fraction:.0%} of each kind: {', '.join(IMAGE_KINDS)}")

    seconds, ours = run_ours(folder, args.judge)
    injected = pd.Series([truth[path] for path in ours["source"]], dtype="string")
    ours_truth = ours.assign(injected=injected)
    workers = available_workers()
    print(f"datamatters, {workers} workers: {seconds:.1f} s, {n / seconds:.0f} images/s")
    print("  ", ground_truth_scores(ours_truth))

    try:
        run_cleanvision(folder, None)
        print("cleanvision: scanned the folder with truncated files")
    except Exception as err:  # noqa: BLE001 - recording how the other tool fails is the point
        print(
            f"cleanvision: crashed on the folder with truncated files ({type(err).__name__}: {err})"
        )
    shutil.copytree(
        folder,
        readable,
        ignore=lambda d, names: [
            name for name in names if truth.get(str(Path(d) / name)) == "undecodable"
        ],
    )
    readable_truth = {
        path.replace(str(folder), str(readable)): kind
        for path, kind in truth.items()
        if kind != "undecodable"
    }
    seconds, issues = run_cleanvision(readable, None)
    rate = len(issues) / seconds
    print(f"cleanvision defaults, readable files: {seconds:.1f} s, {rate:.0f} images/s")
    print("  ", cleanvision_scores(issues, readable_truth))
    kinds = [
        k
        for k in (
            "dark",
            "light",
            "odd_aspect_ratio",
            "exact_duplicates",
            "near_duplicates",
            "blurry",
            "odd_size",
        )
    ]
    seconds, issues = run_cleanvision(readable, {kind: {} for kind in kinds})
    print(f"cleanvision without {', '.join(CLEANVISION_OFF_FOR_MNIST)}: {seconds:.1f} s")
    print("  ", cleanvision_scores(issues, readable_truth))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
