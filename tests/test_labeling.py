"""The label audit and auto-labeling on real MNIST digits, with real cross-validated training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import compose_config
from datamatters.data.contract import StageData
from datamatters.data.corrupt import inject
from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.errors import InputError
from datamatters.labeling.audit import StartMismatch
from datamatters.labeling.labels import audit_labels, carry_labels
from datamatters.labeling.report import label_report
from datamatters.models.judge_training import fit_judge

QUICK = ["labeling.audit.folds=2", "labeling.audit.classifier.max_epochs=1"]


def kept(pool: StageData) -> StageData:
    """As the quality stage leaves it: every row kept, no issues."""
    manifest = pool.manifest.assign(keep=True, issues=[[] for _ in range(len(pool.manifest))])
    return carry_labels(StageData(pool.images, manifest), None, "data/quality")


@pytest.fixture(scope="module")
def split():
    return ingest(list(Mnist5kSource().items()), 32, 1, 0.2, 0, limit=1500)


@pytest.fixture(scope="module")
def digits(split) -> StageData:
    return split.train


@pytest.fixture(scope="module")
def judge(split):
    """The judge as its stage trains it, on this split's reference images: the audit's start."""
    reference = split.reference
    manifest = reference.manifest.assign(keep=True)
    return fit_judge(StageData(reference.images, manifest), compose_config().judge, "ref").network


@pytest.fixture(scope="module")
def audited(digits, judge):
    """10% of labels flipped and 10% removed; default settings but 3 folds, on 1,200 digits.

    A smaller, faster case than MNIST-5k with 5 folds, so it finds fewer flips (docs/labels.md
    has the full-size numbers)."""
    corrupted, _ = inject(digits, {"label_flip": 0.1, "unlabeled": 0.1}, seed=0)
    cfg = compose_config("labeling.audit.folds=3").labeling
    return audit_labels(kept(corrupted), cfg, judge)


def test_the_audit_starts_from_the_judge_and_refuses_another_network(digits, judge):
    pool = StageData(digits.images[:200], digits.manifest.iloc[:200].reset_index(drop=True))
    other = compose_config("labeling.audit.classifier.network.width=16").labeling
    with pytest.raises(StartMismatch, match="judge's network differs"):
        audit_labels(kept(pool), other, judge)
    fewer = pool.select(pool.manifest["label"].isin(["0", "1", "2"]).to_numpy())
    _, summary = audit_labels(kept(fewer), compose_config(*QUICK).labeling, judge)
    assert 2 <= len(summary.classes) <= 3 and summary.audited > 0, "a head for other classes"


def test_audit_finds_injected_flips(audited):
    data, summary = audited
    report = label_report(data.manifest, summary)
    assert report["label_flips_audited"] > 100
    assert report["label_flip_precision"] >= 0.75
    assert report["label_flip_recall"] >= 0.75
    assert 0.05 <= report["estimated_noise_rate"] <= 0.2
    assert report["dropped_for_label_issue"] == report["label_issues"]  # action drop
    issues = data.manifest["label_issue"]
    assert not data.manifest.loc[issues, "keep"].any()
    assert all("label_issue" in found for found in data.manifest.loc[issues, "issues"])


def test_unlabeled_rows_are_auto_labeled_when_confident(audited):
    data, summary = audited
    report = label_report(data.manifest, summary)
    manifest = data.manifest
    auto = manifest["label_source"] == "auto"
    assert report["auto_labeled"] == auto.sum() > 0
    assert (manifest.loc[auto, "predicted_confidence"] >= 0.9).all()
    assert report["autolabel_accuracy"] >= 0.95
    assert report["autolabel_coverage"] > 0.1
    still = (manifest["injected"] == "unlabeled") & ~auto
    assert manifest.loc[still, "label"].isna().all()


def test_confusion_counts_every_audited_row(audited):
    data, summary = audited
    confusion = label_report(data.manifest, summary)["confusion"]
    assert confusion["classes"] == [str(d) for d in range(10)]
    matrix = np.array(confusion["given_by_predicted"])
    assert matrix.sum() == summary.audited and np.trace(matrix) > 0.8 * matrix.sum()


@pytest.mark.parametrize("action", ["relabel", "flag"])
def test_relabel_and_flag(digits, action):
    pool = StageData(digits.images[:300], digits.manifest.iloc[:300].reset_index(drop=True))
    corrupted, _ = inject(pool, {"label_flip": 0.1}, seed=1)
    cfg = compose_config(*QUICK, f"labeling.audit.action={action}").labeling
    data, _ = audit_labels(kept(corrupted), cfg)
    manifest = data.manifest
    issues = manifest["label_issue"]
    assert issues.any() and manifest["keep"].all()
    assert (manifest["given_label"] == corrupted.manifest["label"]).all()
    if action == "relabel":
        assert (manifest.loc[issues, "label"] == manifest.loc[issues, "predicted_label"]).all()
        assert (manifest.loc[issues, "label_source"] == "relabeled").all()
    else:
        assert (manifest["label"] == manifest["given_label"]).all()


def test_a_class_too_small_to_cross_validate_is_carried_unaudited(digits):
    pool = StageData(digits.images[:200], digits.manifest.iloc[:200].reset_index(drop=True))
    pool.manifest.loc[0, "label"] = "lonely"
    data, summary = audit_labels(kept(pool), compose_config(*QUICK).labeling)
    report = label_report(data.manifest, summary)
    assert report["unaudited_classes"] == ["lonely"]
    assert "lonely" not in summary.classes and summary.audited == 199
    assert data.manifest.loc[0, "keep"] and pd.isna(data.manifest.loc[0, "predicted_label"])


def test_all_unlabeled_skips_with_a_reason(digits):
    pool = StageData(digits.images[:50], digits.manifest.iloc[:50].reset_index(drop=True))
    pool.manifest["label"] = pd.array([pd.NA] * 50, dtype="string")
    data, summary = audit_labels(kept(pool), compose_config(*QUICK).labeling)
    report = label_report(data.manifest, summary)
    assert "0 class(es)" in report["audit_skipped"]
    assert report["kept_unlabeled"] == 50 and report["auto_labeled"] == 0


def test_audit_off_with_nothing_to_auto_label_trains_nothing(digits):
    """filters=none: no classifier is trained when no row needs its predictions."""
    pool = StageData(digits.images[:200], digits.manifest.iloc[:200].reset_index(drop=True))
    cfg = compose_config(*QUICK, "filters=none").labeling
    data, summary = audit_labels(kept(pool), cfg)
    report = label_report(data.manifest, summary)
    assert "no row needs auto-labeling" in report["audit_skipped"]
    assert report["audited"] == 0 and data.manifest["keep"].all()


def test_unknown_action_is_a_clear_error(digits):
    pool = StageData(digits.images[:20], digits.manifest.iloc[:20].reset_index(drop=True))
    with pytest.raises(InputError, match="labeling.audit.action='fix'"):
        audit_labels(kept(pool), compose_config("labeling.audit.action=fix").labeling)
