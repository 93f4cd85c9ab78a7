"""The judge as a feature extractor: its penultimate features (FID, KID, PRDC) and its logits (IS).

The wrappers take uint8 images, as `extract` feeds them, and run the judge in eval mode whatever
mode it is in, so BatchNorm never measures with batch statistics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from datamatters.features.extract import extract
from datamatters.models.judge_network import JudgeNet
from datamatters.models.layout import evaluating


def _as_float01(images: Tensor) -> Tensor:
    """uint8 [0, 255] or float [0, 1] N×C×H×W -> float [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise TypeError(f"expected uint8 or float images, got {images.dtype}")
    return images.float()


class _JudgeExtractor(nn.Module):
    def __init__(self, network: JudgeNet) -> None:
        super().__init__()
        self.network = network

    def _run(self, images: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, images: Tensor) -> Tensor:
        """float64 features, because torchmetrics casts FID back to the dtype of the features."""
        with evaluating(self.network):
            return self._run(_as_float01(images)).double()


class JudgeFeatures(_JudgeExtractor):
    """Penultimate judge activations, for FID and KID.

    `num_features` is set so torchmetrics does not probe the network with a 299×299 dummy image.
    """

    def __init__(self, network: JudgeNet) -> None:
        super().__init__(network)
        self.num_features = int(network.feature_dim)

    def _run(self, images: Tensor) -> Tensor:
        return self.network.features(images)


class JudgeLogits(_JudgeExtractor):
    """Judge class logits, for the Inception Score (which needs class probabilities)."""

    def __init__(self, network: JudgeNet) -> None:
        super().__init__(network)
        self.num_features = int(network.classifier.out_features)

    def _run(self, images: Tensor) -> Tensor:
        return self.network(images)


def judge_features(network: JudgeNet, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """float32 N×D judge features of uint8 N×H×W×C images (what the quality checks compare)."""
    return extract(JudgeFeatures(network), images, batch_size, np.float32)
