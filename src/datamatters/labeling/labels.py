"""Labels as the training stages see them: audited, auto-filled, and with their provenance.

Manifest columns added: `given_label` (as ingested), `label` (what training uses), `label_source`
(given | relabeled | auto | NA), `label_issue` (the audit's verdict), `predicted_label` and
`predicted_confidence` (the cross-validated classifier's), `label_quality` (its probability of the
given label: low means suspect). Rows the quality stage dropped are carried, never audited.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from torch import nn

from datamatters.data.contract import StageData
from datamatters.data.dataset import class_ids, class_names
from datamatters.errors import InputError
from datamatters.labeling.audit import (
    cross_validated_probabilities,
    estimated_noise_rate,
    find_label_issues,
)

log = logging.getLogger("datamatters")

ACTIONS = ("drop", "relabel", "flag")
ISSUE = "label_issue"


@dataclass
class AuditSummary:
    """What the audit did, for the report; `skipped` says why it did nothing, if it did not."""

    classes: list[str] = field(default_factory=list)
    audited: int = 0
    fold_accuracy: float | None = None
    noise_rate: float | None = None
    skipped: str | None = None


def carry_labels(data: StageData, classes: Sequence[str] | None, source_path: str) -> StageData:
    """Given labels as the starting point, refusing labels outside a configured class list."""
    manifest = data.manifest.copy()
    labels = manifest["label"].astype("string")
    if classes is not None:
        unknown = sorted(set(labels.dropna()) - {str(c) for c in classes})
        if unknown:
            raise InputError(
                source_path,
                f"labels not in labeling.classes: {unknown[:10]}",
                "add them to labeling.classes, or set labeling.classes=null "
                "to accept the classes found in the data",
            )
    manifest["given_label"] = labels
    manifest["label"] = labels
    manifest["label_source"] = pd.Series(pd.NA, index=manifest.index, dtype="string").mask(
        labels.notna(), "given"
    )
    manifest["label_issue"] = False
    manifest["predicted_label"] = pd.Series(pd.NA, index=manifest.index, dtype="string")
    manifest["predicted_confidence"] = np.nan
    manifest["label_quality"] = np.nan
    return data.with_manifest(manifest)


def audit_labels(
    data: StageData, cfg: DictConfig, start: nn.Module | None = None
) -> tuple[StageData, AuditSummary]:
    """Audit the given labels of kept rows and auto-label kept unlabeled ones, per `cfg`.

    `cfg`: `audit` (enabled, action, folds, seed, filter_by, classifier) and `autolabel`
    (enabled, min_confidence). Classes with fewer labeled rows than folds cannot be
    cross-validated: their rows are carried unaudited and the report names them. `start` is the
    network each fold model is fine-tuned from (the judge; see `audit.py`).
    """
    if cfg.audit.action not in ACTIONS:
        raise InputError(
            "params.yaml",
            f"labeling.audit.action={cfg.audit.action!r}",
            f"use one of {', '.join(ACTIONS)}",
        )
    manifest = data.manifest.reset_index(drop=True)
    kept = manifest["keep"].to_numpy(dtype=bool)
    labels = manifest["label"].astype("string")
    counts = labels[kept].value_counts()
    classes = class_names(labels[kept & labels.isin(counts[counts >= cfg.audit.folds].index)])
    audited = kept & labels.isin(classes).to_numpy()
    unlabeled = kept & labels.isna().to_numpy()
    summary = AuditSummary(classes=classes)
    if not cfg.audit.enabled and not (cfg.autolabel.enabled and unlabeled.any()):
        summary.skipped = "labeling.audit.enabled is false and no row needs auto-labeling"
        return data.with_manifest(manifest), summary
    if len(classes) < 2:
        summary.skipped = (
            f"{len(classes)} class(es) with at least labeling.audit.folds={cfg.audit.folds} "
            "labeled kept images; the audit and auto-labeling need 2"
        )
        log.warning("label audit skipped: %s", summary.skipped)
        return data.with_manifest(manifest), summary

    ids = class_ids(labels[audited], classes)
    probs = cross_validated_probabilities(
        data.images,
        np.flatnonzero(audited),
        ids,
        np.flatnonzero(unlabeled & cfg.autolabel.enabled),
        len(classes),
        cfg.audit,
        start,
    )
    summary.audited, summary.fold_accuracy = int(audited.sum()), probs.fold_accuracy
    _record_predictions(manifest, audited, probs.labeled, classes, ids)
    if cfg.audit.enabled:
        issues = find_label_issues(ids, probs.labeled, cfg.audit.filter_by)
        summary.noise_rate = estimated_noise_rate(ids, probs.labeled)
        _apply(manifest, np.flatnonzero(audited)[issues], cfg.audit.action)
    if cfg.autolabel.enabled and unlabeled.any():
        _record_predictions(manifest, unlabeled, probs.unlabeled, classes, None)
        _autolabel(manifest, unlabeled, cfg.autolabel.min_confidence)
    return data.with_manifest(manifest), summary


def _record_predictions(
    manifest: pd.DataFrame,
    rows: np.ndarray,
    probabilities: np.ndarray,
    classes: list[str],
    given: np.ndarray | None,
) -> None:
    predicted = probabilities.argmax(axis=1)
    manifest.loc[rows, "predicted_label"] = np.asarray(classes, dtype=object)[predicted]
    manifest.loc[rows, "predicted_confidence"] = probabilities.max(axis=1)
    if given is not None:
        manifest.loc[rows, "label_quality"] = probabilities[np.arange(len(given)), given]


def _apply(manifest: pd.DataFrame, issues: np.ndarray, action: str) -> None:
    manifest.loc[issues, "label_issue"] = True
    if action == "drop":
        manifest.loc[issues, "keep"] = False
        flagged = set(issues.tolist())
        manifest["issues"] = [
            [*found, ISSUE] if row in flagged else list(found)
            for row, found in enumerate(manifest["issues"])
        ]
    elif action == "relabel":
        manifest.loc[issues, "label"] = manifest.loc[issues, "predicted_label"]
        manifest.loc[issues, "label_source"] = "relabeled"


def _autolabel(manifest: pd.DataFrame, unlabeled: np.ndarray, min_confidence: float) -> None:
    confident = unlabeled & (manifest["predicted_confidence"] >= min_confidence).to_numpy()
    manifest.loc[confident, "label"] = manifest.loc[confident, "predicted_label"]
    manifest.loc[confident, "label_source"] = "auto"
