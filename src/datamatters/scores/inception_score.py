"""Inception Score (Salimans et al. 2016) on class logits, through torchmetrics."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torchmetrics.image.inception import InceptionScore

from datamatters.scores.kid import FeatureRows


def inception_score(logits: np.ndarray, seed: int) -> tuple[float, float]:
    """Mean and standard deviation over splits (their order drawn from `seed`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        metric = InceptionScore(feature=FeatureRows(logits.shape[1]))
    metric.update(torch.from_numpy(np.asarray(logits)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)
