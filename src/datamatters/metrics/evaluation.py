"""Measure a trained generator against the reference split with the judge's features."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch import nn

from datamatters.data.contract import StageData
from datamatters.data.datamodule import class_ids, class_names, labeled_images
from datamatters.metrics.generative import frechet_distance, generative_metrics, to_uint8
from datamatters.models.judge import predict_proba
from datamatters.stage import StageError

log = logging.getLogger("datamatters")


def evaluate_generator(
    generator: nn.Module,
    judge: nn.Module,
    reference: StageData,
    cfg: DictConfig,
    reference_path: str,
) -> dict[str, float | int]:
    """Metric names carry the features and the sample count (`fid_judge_1k`), as NVIDIA's do."""
    real = reference.images[reference.manifest["decode_error"].isna().to_numpy()]
    labels = generator.balanced_labels(cfg.num_samples)
    fake = generate(generator, cfg.num_samples, cfg.batch_size, cfg.seed, labels)
    if fake.shape[1:] != real.shape[1:]:
        raise StageError(
            "evaluate",
            reference_path,
            f"generated images are {fake.shape[1:]}, reference {real.shape[1:]}",
            "re-run `dvc repro` so the model is trained on data of the reference's size",
        )
    log.info("measuring %d generated vs %d reference images", len(fake), len(real))
    scores = generative_metrics(
        real,
        fake,
        judge,
        batch_size=cfg.batch_size,
        kid_subset_size=cfg.kid_subset_size,
        seed=cfg.seed,
    )
    tag = sample_tag(cfg.num_samples)
    named = {
        f"{name.replace('_judge', f'_judge_{tag}', 1)}": round(value, 6)
        for name, value in scores.items()
    }
    named |= {"generated_images": len(fake), "reference_images": len(real)}
    if labels is not None:
        named |= conditional_metrics(generator.classes, labels.numpy(), fake, judge, reference, tag)
    return named


def conditional_metrics(
    classes: list[str],
    labels: np.ndarray,
    fake: np.ndarray,
    judge: nn.Module,
    reference: StageData,
    tag: str,
) -> dict:
    """Does a conditional model draw the class it was asked for, and how well, class by class?

    `cond_acc_judge`: the judge's accuracy on samples generated for each class; per-class FID
    compares the samples of one class with the reference images of that class. Classes the
    reference split has no labeled images of cannot be judged and are listed instead.
    """
    usable = labeled_images(reference)
    judge_classes = class_names(usable.manifest["label"])
    unknown = sorted(set(classes) - set(judge_classes))
    if unknown:
        log.warning(
            "classes %s are absent from the reference split, so the judge cannot check them; "
            "they are left out of the conditional metrics",
            unknown,
        )
    names = np.asarray(classes)[labels]
    known = np.isin(names, judge_classes)
    fake, wanted = fake[known], class_ids(pd.Series(names[known]), judge_classes)
    real_ids = class_ids(usable.manifest["label"], judge_classes)
    per_class = {}
    for i, name in enumerate(judge_classes):
        real_of_class, fake_of_class = usable.images[real_ids == i], fake[wanted == i]
        if len(real_of_class) >= 2 and len(fake_of_class) >= 2:
            per_class[name] = round(frechet_distance(real_of_class, fake_of_class, judge), 6)
    hits = predict_proba(judge, fake).argmax(axis=1) == wanted if len(fake) else np.zeros(0)
    return {
        f"cond_acc_judge_{tag}": _mean(hits),
        f"fid_judge_{tag}_class_mean": _mean(list(per_class.values())),
        f"fid_judge_{tag}_class": per_class,
        "classes_not_in_reference": unknown,
    }


def _mean(values) -> float | None:
    return round(float(np.mean(values)), 6) if len(values) else None


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


def sample_tag(count: int) -> str:
    """1000 -> '1k', 2500 -> '2.5k', 500 -> '500'."""
    return f"{count / 1000:g}k" if count >= 1000 else str(count)
