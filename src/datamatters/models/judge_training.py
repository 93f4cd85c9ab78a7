"""Fit the judge on the reference split and measure it before anyone relies on its features."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader

from datamatters.data.contract import StageData
from datamatters.data.dataset import (
    ImageArrayDataset,
    class_ids,
    class_names,
    labeled_images,
)
from datamatters.data.mapped import rows_of
from datamatters.errors import InputError
from datamatters.features.extract import check_images, extract
from datamatters.features.judge import JudgeFeatures
from datamatters.models.judge import accuracy, fit_classifier
from datamatters.scores.frechet import fid

# Below this held-out accuracy the judge's features barely separate the classes, and FID measured
# with them says little about whether samples look like the domain.
LOW_ACCURACY = 0.8

log = logging.getLogger("datamatters")


@dataclass
class FittedJudge:
    network: nn.Module
    network_config: dict
    report: dict


def fit_judge(reference: StageData, cfg: DictConfig, reference_path: str) -> FittedJudge:
    usable = labeled_images(reference)
    classes = class_names(usable.manifest["label"])
    if len(classes) < 2:
        raise InputError(
            reference_path,
            f"the reference split has {len(classes)} labeled class(es)",
            "the judge needs labeled images of at least 2 classes (one sub-folder per class)",
        )
    labels = class_ids(usable.manifest["label"], classes)
    holdout = stratified_holdout(labels, cfg.holdout_fraction, cfg.seed)
    network_config = OmegaConf.to_container(cfg.network, resolve=True) | {
        "num_classes": len(classes)
    }
    train, held_out = usable.select(~holdout).images, usable.select(holdout).images
    network = fit_classifier(
        instantiate(network_config),
        instantiate(cfg.optimizer),
        _loader(train, labels[~holdout], cfg, shuffle=True),
        cfg.max_epochs,
        cfg.max_shift,
        cfg.accelerator,
        val=_loader(held_out, labels[holdout], cfg, shuffle=False),
    )
    report = {
        "accuracy_holdout": round(accuracy(network, held_out, labels[holdout]), 6),
        "holdout_images": int(holdout.sum()),
        "train_images": int((~holdout).sum()),
        "classes": len(classes),
        "fid_judge_ref_halves": round(_halves_fid(usable.images, network, cfg.seed), 6),
    }
    if report["accuracy_holdout"] < LOW_ACCURACY:
        log.warning(
            "judge accuracy %.2f is low (trained on %d reference images), so its FID is a weak "
            "signal; give the reference split more images (data.reference_fraction) or train "
            "the judge longer (judge.max_epochs)",
            report["accuracy_holdout"],
            report["train_images"],
        )
    return FittedJudge(network, network_config, report)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Mask holding out `fraction` of each class (at least one image of any class of 2+)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        take = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        mask[members[:take]] = True
    return mask


def _halves_fid(images: np.ndarray, network: nn.Module, seed: int) -> float:
    """FID between two random halves of the reference: the floor for any generator."""
    check_images(images, "reference", minimum=4)
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(order) // 2
    extractor = JudgeFeatures(network)
    first, second = rows_of(images, order[:half]), rows_of(images, order[half:])
    return fid(extract(extractor, first), extract(extractor, second))


def _loader(images: np.ndarray, labels: np.ndarray, cfg: DictConfig, shuffle: bool) -> DataLoader:
    """Batches of `images` (read a row at a time, each row's pages released after it is read:
    the reference a judge learns from may be larger than memory)."""
    dataset = ImageArrayDataset(images, labels, release_pages=True)
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=shuffle)
