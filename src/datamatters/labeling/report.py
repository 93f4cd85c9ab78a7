"""What the labeling stage found and did, scored against injected ground truth when there is any."""

from __future__ import annotations

import pandas as pd

from datamatters.atomic import atomic_path
from datamatters.labeling.labels import AuditSummary


def label_report(manifest: pd.DataFrame, summary: AuditSummary) -> dict:
    kept = manifest[manifest["keep"]]
    audited = audited_rows(manifest, summary.classes)
    issues = manifest["label_issue"].astype(bool)
    source = manifest["label_source"]
    report = {
        "kept_labeled": int(kept["label"].notna().sum()),
        "kept_unlabeled": int(kept["label"].isna().sum()),
        "kept_per_class": _counts(kept["label"]),
        "audited": summary.audited,
        "audit_skipped": summary.skipped,
        "unaudited_classes": sorted(set(manifest["given_label"].dropna()) - set(summary.classes)),
        "cv_accuracy": _round(summary.fold_accuracy),
        "estimated_noise_rate": _round(summary.noise_rate),
        "label_issues": int(issues.sum()),
        "issues_per_class": _counts(manifest.loc[issues, "given_label"]),
        "relabeled": int((source == "relabeled").sum()),
        "dropped_for_label_issue": int((issues & ~manifest["keep"]).sum()),
        "auto_labeled": int((source == "auto").sum()),
        "confusion": confusion(manifest[audited], summary.classes),
    }
    return report | ground_truth(manifest, audited, issues)


def audited_rows(manifest: pd.DataFrame, classes: list[str]) -> pd.Series:
    """Rows with a given label of an audited class and an out-of-sample prediction."""
    given = manifest["given_label"].astype("string")
    return (given.isin(classes) & manifest["predicted_label"].notna()).fillna(False)


def confusion(audited: pd.DataFrame, classes: list[str]) -> dict:
    """Counts of given (rows) against the classifier's out-of-sample prediction (columns)."""
    table = pd.crosstab(audited["given_label"], audited["predicted_label"])
    table = table.reindex(index=classes, columns=classes, fill_value=0)
    return {"classes": classes, "given_by_predicted": table.to_numpy().tolist()}


def ground_truth(manifest: pd.DataFrame, audited: pd.Series, issues: pd.Series) -> dict:
    """Audit precision/recall on injected label flips; auto-label accuracy on removed labels."""
    if "injected" not in manifest:
        return {}
    injected = manifest["injected"].astype("string")
    scores: dict = {}
    flips = audited & (injected == "label_flip")
    if flips.any():
        found = issues & audited
        scores["label_flips_audited"] = int(flips.sum())
        scores["label_flip_precision"] = _ratio((found & flips).sum(), found.sum())
        scores["label_flip_recall"] = _ratio((found & flips).sum(), flips.sum())
    removed = manifest["keep"] & (injected == "unlabeled")
    if removed.any():
        auto = removed & (manifest["label_source"] == "auto")
        right = auto & (manifest["label"] == manifest["clean_label"]).fillna(False)
        scores["unlabeled_injected"] = int(removed.sum())
        scores["autolabel_coverage"] = _ratio(auto.sum(), removed.sum())
        scores["autolabel_accuracy"] = _ratio(right.sum(), auto.sum())
    return scores


def _counts(labels: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in labels.value_counts(dropna=True).sort_index().items()}


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(float(numerator) / float(denominator), 6) if denominator else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def write_confusion_rows(manifest: pd.DataFrame, classes: list[str], path: str) -> None:
    """One `given,predicted` row per audited image: DVC's `confusion` plot template counts them."""
    rows = manifest.loc[audited_rows(manifest, classes), ["given_label", "predicted_label"]]
    rows = rows.rename(columns={"given_label": "given", "predicted_label": "predicted"})
    with atomic_path(path) as tmp:
        rows.to_csv(tmp, index=False)
