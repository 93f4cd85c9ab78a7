"""The judge as a feature extractor for torchmetrics' FID, KID and Inception Score.

torchmetrics accepts any `nn.Module` as `feature`; these wrappers adapt the judge to what it
calls them with (uint8 images) and run it in eval mode whatever mode the metric is in, as
torchmetrics does for Inception, so BatchNorm never measures with batch statistics.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from datamatters.models.networks import JudgeNet, evaluating


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

    def _run(self, images: Tensor) -> Tensor:
        return self.network(images)


def judge_features(network: JudgeNet, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """N×D judge features of uint8 N×H×W×C images, batch by batch so a memmap stays on disk."""
    extractor = JudgeFeatures(network)
    with torch.inference_mode():
        batches = [
            extractor(
                torch.from_numpy(np.array(images[start : start + batch_size])).permute(0, 3, 1, 2)
            )
            for start in range(0, len(images), batch_size)
        ]
    return torch.cat(batches).float().numpy() if batches else np.zeros((0, extractor.num_features))
