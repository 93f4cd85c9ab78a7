"""The judge fits on the reference split only; evaluate names its metrics by features and count."""

from __future__ import annotations

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict
from torch.utils.data import DataLoader, TensorDataset

from conftest import ROOT, compose_config
from datamatters.data.contract import kept_rows
from datamatters.data.dataset import class_ids
from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.errors import InputError
from datamatters.features import reference_cache
from datamatters.features.inception import InceptionFeatures
from datamatters.features.judge import JudgeFeatures
from datamatters.metrics.evaluation import evaluate_generator, generate
from datamatters.metrics.names import MetricName, sample_tag
from datamatters.models.callbacks import EpochFID
from datamatters.models.generative import GenerativeModule
from datamatters.models.judge import accuracy
from datamatters.models.judge_training import fit_judge, stratified_holdout
from datamatters.quality.assess import assess, configured_checks


@pytest.fixture(scope="module")
def reference():
    """A reference split as the judge and the feature cache receive it: checked by its stage."""
    raw = ingest(list(Mnist5kSource().items()), 32, 1, 0.5, 0, limit=200).reference
    checks = configured_checks(compose_config().reference.quality, "reference.quality")
    return assess(raw, checks)[0]


def tiny_judge_config():
    cfg = compose_config().judge
    with open_dict(cfg):
        cfg.max_epochs, cfg.accelerator = 2, "cpu"
    return cfg


def test_stratified_holdout_takes_a_share_of_every_class():
    labels = np.repeat(np.arange(4), [10, 5, 2, 1])
    mask = stratified_holdout(labels, 0.2, seed=0)
    assert [int(mask[labels == c].sum()) for c in range(4)] == [2, 1, 1, 0]
    assert np.array_equal(mask, stratified_holdout(labels, 0.2, seed=0))


def test_fit_judge_reports_accuracy_and_reference_floor(reference):
    fitted = fit_judge(reference, tiny_judge_config(), "data/reference")
    report = fitted.report
    assert report["classes"] == 10
    assert report["holdout_images"] + report["train_images"] == len(reference.images)
    assert 0.0 <= report["accuracy_holdout"] <= 1.0 and math.isfinite(
        report["fid_judge_ref_halves"]
    )
    assert fitted.network_config["num_classes"] == 10
    assert instantiate(fitted.network_config)(torch.zeros(1, 1, 32, 32)).shape == (1, 10)


def test_fit_judge_needs_two_labeled_classes(reference):
    one_class = reference.select(reference.manifest["label"] == "3")
    with pytest.raises(InputError, match=r"^data/reference: the reference split has 1"):
        fit_judge(one_class, tiny_judge_config(), "data/reference")


def metrics_config(**overrides):
    settings = {
        "num_samples": 64,
        "inception_samples": 0,
        "batch_size": 32,
        "kid_subset_size": 50,
        "bootstrap_rounds": 20,
        "prdc_k": 3,
        "seed": 0,
    }
    return OmegaConf.create(settings | overrides)


def cached_features(reference, judge, folder, inception=False):
    kept = kept_rows(reference)
    extractors = {"judge": JudgeFeatures(judge)} | (
        {"inception": InceptionFeatures()} if inception else {}
    )
    features = reference_cache.compute(kept, extractors, batch_size=64)
    reference_cache.save(folder, kept, features)
    return folder


def test_evaluate_names_metrics_by_features_and_sample_count(reference, tmp_path):
    judge = fit_judge(reference, tiny_judge_config(), "data/reference").network
    generator = instantiate(compose_config("model=vae").model)
    few = reference.select(np.arange(len(reference.manifest)) < 30)  # Inception is slow on a CPU
    folder = cached_features(few, judge, tmp_path / "features", inception=True)
    cfg = metrics_config(inception_samples=16)
    metrics = evaluate_generator(generator, judge, folder, cfg, training_images=reference.images)
    per_extractor = [
        "fid_{}",
        "fid_{}_ci95_low",
        "fid_{}_ci95_high",
        "kid_{}_mean",
        "kid_{}_std",
        "precision_{}",
        "recall_{}",
        "density_{}",
        "coverage_{}",
    ]
    assert set(metrics) == {
        *(name.format("judge_64") for name in per_extractor),
        *(name.format("inception_16") for name in per_extractor),
        "is_judge_64_mean",
        "is_judge_64_std",
        "memorization_judge_64",
        "generated_images",
        "reference_images",
    }
    for extractor in ("judge_64", "inception_16"):
        low, high = metrics[f"fid_{extractor}_ci95_low"], metrics[f"fid_{extractor}_ci95_high"]
        assert low <= metrics[f"fid_{extractor}"] * 1.5 and low < high
        assert 0 <= metrics[f"precision_{extractor}"] <= 1
    assert 0 <= metrics["memorization_judge_64"] <= 1
    assert metrics == evaluate_generator(generator, judge, folder, cfg, reference.images)


def test_evaluate_without_inception_features_names_the_fix(reference, tmp_path):
    judge = fit_judge(reference, tiny_judge_config(), "data/reference").network
    generator = instantiate(compose_config("model=vae").model)
    folder = cached_features(reference, judge, tmp_path / "features")
    with pytest.raises(InputError, match="eval.metrics.inception_samples=0"):
        evaluate_generator(generator, judge, folder, metrics_config(inception_samples=8))


@pytest.mark.parametrize("count, tag", [(500, "500"), (1000, "1k"), (2500, "2.5k"), (50000, "50k")])
def test_sample_tag(count, tag):
    assert sample_tag(count) == tag
    assert MetricName.parse(f"fid_judge_{tag}") == MetricName("fid", "judge", count)


def test_every_committed_metric_name_parses_back_to_itself():
    """evaluate formats and the trace parses with one schema, so they cannot disagree."""
    committed = json.loads((ROOT / "metrics" / "evaluate.json").read_text())
    parsed = {name: MetricName.parse(name) for name in committed}
    assert {name for name, parts in parsed.items() if parts is None} == {
        "generated_images",
        "reference_images",
    }
    assert all(str(parts) == name for name, parts in parsed.items() if parts)
    assert parsed["kid_inception_500_std"] == MetricName("kid", "inception", 500, "std")


@pytest.mark.parametrize(
    "name, parts, score",
    [
        ("fid_judge_1k", ("fid", "judge", 1000, ""), True),
        ("fid_judge_1k_ci95_low", ("fid", "judge", 1000, "ci95_low"), False),
        ("is_judge_1k_std", ("is", "judge", 1000, "std"), False),
        ("cond_acc_judge_2.5k", ("cond_acc", "judge", 2500, ""), True),
        ("fid_judge_1k_class_mean", ("fid", "judge", 1000, "class_mean"), True),
    ],
)
def test_metric_names_say_what_is_a_score_and_what_bounds_or_spreads_one(name, parts, score):
    parsed = MetricName.parse(name)
    assert parsed == MetricName(*parts) and parsed.is_score == score


@pytest.mark.parametrize(
    "name", ["generated_images", "fid_judge_ref_halves", "fid_judge_1k_class.3", "fid_judge_1.0k"]
)
def test_names_outside_the_schema_do_not_parse(name):
    assert MetricName.parse(name) is None


def test_a_metrics_interval_and_its_neighbours_are_named_by_the_schema():
    fid = MetricName("fid", "inception", 500)
    assert [str(bound) for bound in fid.bounds()] == [
        "fid_inception_500_ci95_low",
        "fid_inception_500_ci95_high",
    ]
    assert str(MetricName.parse("kid_judge_1k_mean").sibling("precision")) == "precision_judge_1k"


class ReplayReference(GenerativeModule):
    """A conditional 'generator' that replays reference images of the class it is asked for.

    Its samples are real images of the right class, so its conditional accuracy must equal the
    judge's own accuracy on those images; the class `unseen` has no reference images at all.
    """

    def __init__(self, reference):
        classes = [*sorted(reference.manifest["label"].unique()), "unseen"]
        super().__init__(latent_shape=(1,), classes=classes, num_classes=len(classes))
        ids = class_ids(reference.manifest["label"], classes)
        self.by_class = [
            torch.from_numpy(np.array(reference.images[ids == i])).permute(0, 3, 1, 2) / 255.0
            for i in range(len(classes) - 1)
        ]

    def decode(self, z, labels, preview=False):
        blank = torch.zeros_like(self.by_class[0][0])
        picks = [
            self.by_class[c][i % len(self.by_class[c])] if c < len(self.by_class) else blank
            for i, c in enumerate(labels.tolist())
        ]
        return torch.stack(picks)


def test_conditional_accuracy_and_per_class_fid(reference, tmp_path):
    judge = fit_judge(reference, tiny_judge_config(), "data/reference").network
    generator = ReplayReference(reference)
    cfg = metrics_config(num_samples=110)
    folder = cached_features(reference, judge, tmp_path / "features")
    metrics = evaluate_generator(generator, judge, folder, cfg)

    labels = generator.balanced_labels(110)
    asked = labels < 10
    replayed = generate(generator, 110, cfg.batch_size, cfg.seed, labels)[asked.numpy()]
    expected = accuracy(judge, replayed, labels[asked].numpy())
    assert metrics["cond_acc_judge_110"] == pytest.approx(expected, abs=1e-6)
    assert metrics["classes_not_in_reference"] == ["unseen"]
    assert set(metrics["fid_judge_110_class"]) == {str(d) for d in range(10)}
    assert all(math.isfinite(v) for v in metrics["fid_judge_110_class"].values())


def test_judge_fid_is_logged_after_every_epoch(reference, tmp_path):
    judge = fit_judge(reference, tiny_judge_config(), "data/reference").network
    real, _ = reference_cache.load(cached_features(reference, judge, tmp_path / "f"), "judge")
    model = instantiate(compose_config("model=vae").model)
    images = torch.from_numpy(np.array(reference.images)).permute(0, 3, 1, 2).float() / 255
    loader = DataLoader(TensorDataset(images, torch.zeros(len(images), dtype=torch.long)), 32)
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[EpochFID(judge, real, num_samples=40)],
    )
    trainer.fit(model, loader)
    assert math.isfinite(float(trainer.callback_metrics["fid_judge_40"]))
