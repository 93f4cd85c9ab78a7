"""Precision and recall of the quality checks and the label audit against injected corruption.

    python benchmarks/ground_truth.py quality    # each image kind alone at 1%, then all at 10%
    python benchmarks/ground_truth.py labels     # 10% label flips; 30% labels removed
    python benchmarks/ground_truth.py labels -S labeling.audit.classifier.max_epochs=3   # a recipe

Runs the stages' own functions with the default config (`conf/`) on MNIST-5k's train pool, the
way `dvc repro` would with `-S ingest.corrupt.<kind>=...`, and prints one line per case. Both use
the judge at `models/judge.pt` (run `dvc repro judge` first): the quality checks measure with its
features, the label audit fine-tunes it.
"""

from __future__ import annotations

import argparse
import logging
import time

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from datamatters.config import CONFIG_DIR
from datamatters.data.contract import StageData
from datamatters.data.corrupt import KINDS, inject
from datamatters.data.ingest import IngestResult, ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.features.judge import judge_features
from datamatters.labeling.labels import audit_labels, carry_labels
from datamatters.labeling.report import label_report
from datamatters.models.checkpoint import load_checkpoint
from datamatters.quality.assess import assess, configured_check, configured_checks
from datamatters.quality.checks import QualityContext
from datamatters.quality.report import NOT_QUALITY_KINDS, ground_truth_scores

IMAGE_KINDS = [k for k in KINDS if k not in NOT_QUALITY_KINDS]


OVERRIDES: list[str] = []  # -S: try another recipe, e.g. labeling.audit.classifier.max_epochs=3
CASES: list[str] = []  # --case: the label cases to run (default: all)


def config():
    with initialize_config_dir(str(CONFIG_DIR.resolve()), version_base=None):
        cfg = compose("config", overrides=OVERRIDES)
    OmegaConf.resolve(cfg)
    return cfg


def quality(split: IngestResult, judge) -> None:
    """The quality stage's checks as `dvc repro` runs them, the reference leak check included."""
    cfg = config()
    reference, _ = assess(
        split.reference, configured_checks(cfg.reference.quality, "reference.quality")
    )
    cases = {kind: {kind: 0.01} for kind in IMAGE_KINDS}
    cases["all kinds, 10% in total"] = {kind: 0.1 / len(IMAGE_KINDS) for kind in IMAGE_KINDS}
    for name, fractions in cases.items():
        corrupted, _ = inject(split.train, fractions, seed=0)
        checks = configured_checks(cfg.quality, "quality") | {
            "reference_leak": configured_check(cfg.reference.leak, "reference.leak")
        }
        context = QualityContext(
            features=judge_features(judge, corrupted.images), reference=reference
        )
        assessed, _ = assess(corrupted, checks, context)
        scores = ground_truth_scores(assessed.manifest)
        recalls = {k[len("recall_") :]: v for k, v in scores.items() if k.startswith("recall_")}
        print(
            f"{name:<24} precision {scores['precision']:.3f}  recall {scores['recall']:.3f}  "
            f"clean dropped {scores['clean_dropped_fraction']:.2%}  per kind {recalls}"
        )


def labels(pool: StageData, judge) -> None:
    """The label audit as the labeling stage runs it: from the judge, unless configured not to."""
    cfg = config().labeling
    start = judge if cfg.audit.start_from_judge else None
    cases = {"10% flipped": {"label_flip": 0.1}, "30% removed": {"unlabeled": 0.3}}
    for name, fractions in cases.items():
        if CASES and not any(name.startswith(c) for c in CASES):
            continue
        corrupted, _ = inject(pool, fractions, seed=0)
        manifest = corrupted.manifest.assign(keep=True, issues=[[]] * len(corrupted.manifest))
        started = time.perf_counter()
        data, summary = audit_labels(
            carry_labels(StageData(corrupted.images, manifest), None, "data/quality"), cfg, start
        )
        elapsed = time.perf_counter() - started
        report = label_report(data.manifest, summary)
        keys = [
            "cv_accuracy",
            "estimated_noise_rate",
            "label_issues",
            "label_flips_audited",
            "label_flip_precision",
            "label_flip_recall",
            "unlabeled_injected",
            "autolabel_coverage",
            "autolabel_accuracy",
        ]
        found = {k: report[k] for k in keys if report.get(k) is not None}
        print(f"{name:<12} {elapsed:.0f} s  {found}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["quality", "labels"])
    parser.add_argument("--judge", default="models/judge.pt")
    parser.add_argument("-S", "--set", action="append", default=[], help="a Hydra override")
    parser.add_argument("--case", action="append", default=[], help="e.g. 10%% (labels only)")
    args = parser.parse_args()
    OVERRIDES.extend(args.set)
    CASES.extend(args.case)
    logging.getLogger("datamatters").setLevel(logging.WARNING)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    split = ingest(list(Mnist5kSource().items()), 32, 1, 0.2, 0)
    if args.what == "quality":
        quality(split, load_checkpoint(args.judge))
    else:
        labels(split.train, load_checkpoint(args.judge))


if __name__ == "__main__":
    main()
