"""Measure a trained generator against the reference split's cached features.

Metric names carry the extractor and the sample count (`fid_judge_1k`, `fid_inception_500`), as
NVIDIA's do, so a table only ever compares like with like.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch import nn

from datamatters.data.dataset import class_ids, class_names
from datamatters.errors import InputError
from datamatters.features import reference_cache
from datamatters.features.extract import extract, to_uint8
from datamatters.features.inception import InceptionFeatures
from datamatters.features.judge import JudgeFeatures, JudgeLogits
from datamatters.metrics.names import MetricName
from datamatters.pipeline import outputs
from datamatters.scores.frechet import Gaussian, bootstrap_interval, fid, frechet_distance
from datamatters.scores.inception_score import inception_score
from datamatters.scores.kid import kid
from datamatters.scores.memorization import memorization
from datamatters.scores.prdc import prdc

log = logging.getLogger("datamatters")


def evaluate_generator(
    generator: nn.Module,
    judge: nn.Module,
    features_dir: str | Path,
    cfg: DictConfig,
    training_images: np.ndarray | None = None,
) -> dict:
    """`cfg`: eval.metrics (num_samples, inception_samples, batch_size, kid_subset_size,
    bootstrap_rounds, prdc_k, seed). With the images the generator was trained on, also the
    share of samples that copy one of them (`memorization_judge_<n>`)."""
    labels = generator.balanced_labels(cfg.num_samples)
    fake = generate(generator, cfg.num_samples, cfg.batch_size, cfg.seed, labels)
    expected = (judge.image_size, judge.image_size, judge.channels)
    if fake.shape[1:] != expected:
        raise InputError(
            outputs("train")[0],
            f"generated images are {fake.shape[1:]}, the reference's are {expected}",
            "re-run `dvc repro` so the model is trained on data of the reference's size",
        )
    measured = measure_images(fake, judge, features_dir, cfg, training_images)
    scores = measured.scores
    if labels is not None:
        scores |= conditional_metrics(
            generator.classes,
            labels.numpy(),
            measured.judge_features,
            measured.judge_logits,
            measured.reference_judge,
            measured.rows,
            cfg.num_samples,
        )
    return scores


@dataclass
class Measured:
    """The scores of a set of images, with the judge's view of them for further metrics."""

    scores: dict
    judge_features: np.ndarray
    judge_logits: np.ndarray
    reference_judge: np.ndarray
    rows: pd.DataFrame


def measure_images(
    images: np.ndarray,
    judge: nn.Module,
    features_dir: str | Path,
    cfg: DictConfig,
    training_images: np.ndarray | None = None,
) -> Measured:
    """Every metric of uint8 N×H×W×C images against the reference features, named by extractor
    and count: generated images (evaluate) and real ones (the real-data floor) alike."""
    real_judge, rows = reference_cache.load(features_dir, "judge")
    samples = len(images)
    log.info("measuring %d images against %d reference rows", samples, len(rows))
    fake_judge = extract(JudgeFeatures(judge), images, cfg.batch_size)
    scores = _named(feature_metrics(real_judge, fake_judge, cfg), "judge", samples)
    fake_logits = extract(JudgeLogits(judge), images, cfg.batch_size)
    is_mean, is_std = inception_score(fake_logits, cfg.seed)
    scores |= _named({"is_mean": is_mean, "is_std": is_std}, "judge", samples)
    if training_images is not None:
        train_judge = extract(JudgeFeatures(judge), training_images, cfg.batch_size)
        copies = memorization(train_judge, real_judge, fake_judge)
        scores |= _named({"memorization": copies}, "judge", samples)
    if cfg.inception_samples:
        real_inception, _ = reference_cache.load(features_dir, "inception")
        count = min(cfg.inception_samples, samples)
        log.info("Inception features of %d images", count)
        fake_inception = extract(InceptionFeatures().to(_device(judge)), images[:count], 50)
        scores |= _named(feature_metrics(real_inception, fake_inception, cfg), "inception", count)
    scores = {name: round(value, 6) for name, value in scores.items()}
    scores |= {"generated_images": samples, "reference_images": len(rows)}
    return Measured(scores, fake_judge, fake_logits, real_judge, rows)


def feature_metrics(real: np.ndarray, fake: np.ndarray, cfg: DictConfig) -> dict[str, float]:
    """FID with its bootstrap 95% interval, KID, and precision/recall/density/coverage.

    `cfg`: `kid_subset_size`, `bootstrap_rounds` (0: no interval), `prdc_k`, `seed`.
    """
    reference = Gaussian.of(real)
    scores = {"fid": frechet_distance(reference, fake)}
    if cfg.bootstrap_rounds:
        low, high = bootstrap_interval(reference, fake, cfg.bootstrap_rounds, cfg.seed)
        scores |= {"fid_ci95_low": low, "fid_ci95_high": high}
    scores["kid_mean"], scores["kid_std"] = kid(real, fake, cfg.kid_subset_size, cfg.seed)
    return scores | prdc(real, fake, k=cfg.prdc_k)


def _named(scores: dict[str, float], features: str, samples: int) -> dict[str, float]:
    """`fid_ci95_low` -> `fid_judge_1k_ci95_low`: the statistic, then features and count."""
    named = {}
    for name, value in scores.items():
        statistic, _, detail = name.partition("_")
        named[str(MetricName(statistic, features, samples, detail))] = value
    return named


def conditional_metrics(
    classes: list[str],
    labels: np.ndarray,
    fake_features: np.ndarray,
    fake_logits: np.ndarray,
    real_features: np.ndarray,
    rows: pd.DataFrame,
    samples: int,
) -> dict:
    """Does a conditional model draw the class it was asked for, and how well, class by class?

    `cond_acc_judge`: the judge's accuracy on samples generated for each class; per-class FID
    compares the samples of one class with the reference images of that class. Classes the
    reference split has no labeled images of cannot be judged and are listed instead.
    """
    judge_classes = class_names(rows["label"])
    unknown = sorted(set(classes) - set(judge_classes))
    if unknown:
        log.warning(
            "classes %s are absent from the reference split, so the judge cannot check them; "
            "they are left out of the conditional metrics",
            unknown,
        )
    names = np.asarray(classes)[labels]
    known = np.isin(names, judge_classes)
    wanted = class_ids(pd.Series(names[known]), judge_classes)
    real_ids = class_ids(rows["label"], judge_classes)
    fake_features = fake_features[known]
    per_class = {}
    for i, name in enumerate(judge_classes):
        real_of_class, fake_of_class = real_features[real_ids == i], fake_features[wanted == i]
        if len(real_of_class) >= 2 and len(fake_of_class) >= 2:
            per_class[name] = round(fid(real_of_class, fake_of_class), 6)
    hits = fake_logits[known].argmax(axis=1) == wanted
    return {
        str(MetricName("cond_acc", "judge", samples)): _mean(hits),
        str(MetricName("fid", "judge", samples, "class_mean")): _mean(list(per_class.values())),
        str(MetricName("fid", "judge", samples, "class")): per_class,
        "classes_not_in_reference": unknown,
    }


def _mean(values) -> float | None:
    return round(float(np.mean(values)), 6) if len(values) else None


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def generate(
    generator: nn.Module, count: int, batch_size: int, seed: int, labels: torch.Tensor | None
) -> np.ndarray:
    batches = []
    with torch.inference_mode():
        for start in range(0, count, batch_size):
            size = min(batch_size, count - start)
            chunk = None if labels is None else labels[start : start + size]
            batches.append(to_uint8(generator.sample(size, seed=seed + start, labels=chunk)))
    return np.concatenate(batches)
