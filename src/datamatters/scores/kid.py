"""Kernel Inception Distance (Bińkowski et al. 2018) on feature rows, through torchmetrics."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor, nn

# The submodule, not `torchmetrics.image`: it only exports this when torch-fidelity (and with it
# Inception's weights) is installed, which a custom feature extractor does not need.
from torchmetrics.image.kid import KernelInceptionDistance


class FeatureRows(nn.Module):
    """The identity, as torchmetrics' `feature`: the metric is fed cached feature rows."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, rows: Tensor) -> Tensor:
        return rows.double()


def kid(real: np.ndarray, fake: np.ndarray, subset_size: int, seed: int) -> tuple[float, float]:
    """Mean and standard deviation over random subsets (drawn from `seed`, the caller's global
    random state left untouched)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        metric = KernelInceptionDistance(
            feature=FeatureRows(real.shape[1]), subset_size=min(subset_size, len(real), len(fake))
        )
    metric.update(torch.from_numpy(np.asarray(real)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake)), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)
