"""Measure a trained generator against the reference split with the judge's features."""

from __future__ import annotations

import logging

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from datamatters.data.contract import StageData
from datamatters.metrics.generative import generative_metrics, to_uint8
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
    fake = generate(generator, cfg.num_samples, cfg.batch_size, cfg.seed)
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
    return named | {"generated_images": len(fake), "reference_images": len(real)}


def generate(generator: nn.Module, count: int, batch_size: int, seed: int) -> np.ndarray:
    batches = []
    with torch.inference_mode():
        for start in range(0, count, batch_size):
            size = min(batch_size, count - start)
            batches.append(to_uint8(generator.sample(size, seed=seed + start)))
    return np.concatenate(batches)


def sample_tag(count: int) -> str:
    """1000 -> '1k', 2500 -> '2.5k', 500 -> '500'."""
    return f"{count / 1000:g}k" if count >= 1000 else str(count)
