"""How well the quality stage did against injected ground truth, and a table a person can read.

Label flips and removed labels are the labeling stage's to handle, so they are left out of the
quality scores here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from datamatters.atomic import write_json
from datamatters.data.contract import StageData, write_stage_data
from datamatters.quality.checks import Check
from datamatters.quality.gallery import save_gallery

log = logging.getLogger("datamatters")

NOT_QUALITY_KINDS = ("label_flip", "unlabeled")


def ground_truth_scores(manifest: pd.DataFrame) -> dict[str, float | int]:
    """Recall per injected kind, overall precision/recall, and clean images wrongly dropped.

    Empty when the manifest has no `injected` column or nothing was injected.
    """
    if "injected" not in manifest or manifest["injected"].isna().all():
        return {}
    injected = manifest["injected"].astype("string")
    corrupt = injected.notna() & ~injected.isin(NOT_QUALITY_KINDS)
    dropped = ~manifest["keep"].astype(bool)
    scores: dict[str, float | int] = {}
    for kind in sorted(injected[corrupt].unique()):
        rows = injected == kind
        scores[f"recall_{kind}"] = _ratio((dropped & rows).sum(), rows.sum())
        scores[f"injected_{kind}"] = int(rows.sum())
    scores["precision"] = _ratio((dropped & corrupt).sum(), dropped.sum())
    scores["recall"] = _ratio((dropped & corrupt).sum(), corrupt.sum())
    scores["clean_dropped_fraction"] = _ratio((dropped & ~corrupt).sum(), (~corrupt).sum())
    return scores


def summary_table(report: dict, actions: Mapping[str, str | None]) -> str:
    """One line per check (action None = disabled): action, threshold, flagged; then the total."""
    lines = [f"{'check':<18} {'action':<6} {'threshold':>10} {'flagged':>8}"]
    for name, action in actions.items():
        if action is None:
            lines.append(f"{name:<18} {'off':<6} {'':>10} {'':>8}")
            continue
        threshold = report.get(f"{name}_threshold")
        shown = f"{threshold:.4g}" if threshold is not None else "-"
        lines.append(f"{name:<18} {action:<6} {shown:>10} {report[f'{name}_flagged']:>8}")
    lines.append(
        f"kept {report['kept']} of {report['images']} images ({100 * report['kept_fraction']:.2f}%)"
    )
    return "\n".join(lines)


def write_checked(
    assessed: StageData,
    report: dict,
    checks: Mapping[str, Check],
    paths: Mapping[str, str],
) -> None:
    """A checking stage's outputs (`paths`: output, metrics, gallery) and its closing lines, the
    same for the train pool and the reference split."""
    write_stage_data(paths["output"], assessed, pixels=False)
    write_json(paths["metrics"], report)
    save_gallery(assessed.images, assessed.manifest, list(checks), paths["gallery"])
    log_summary(report, checks)


def log_summary(report: dict, checks: Mapping[str, Check]) -> None:
    """The stage's closing lines: the summary table and, with injected corruption, its scores."""
    actions = {name: check.action if check.enabled else None for name, check in checks.items()}
    for line in summary_table(report, actions).splitlines():
        log.info(line)
    if "precision" in report:
        log.info(
            "against injected ground truth: precision %.3f, recall %.3f, clean dropped %.2f%%",
            report["precision"],
            report["recall"],
            100 * report["clean_dropped_fraction"],
        )


def _ratio(numerator: int, denominator: int) -> float:
    return round(float(numerator) / float(denominator), 6) if denominator else 0.0
