"""An exponential moving average of a generator's weights, the network every sample comes from.

GAN weights oscillate from step to step, so the last step's raw weights are a draw from that
oscillation and a run's reported FID depends on which step it stopped at. Every strong GAN codebase
(StyleGAN2-ADA, BigGAN, StudioGAN) evaluates an average instead (Yazici et al. 2019). The rule is
StyleGAN2-ADA's: a half-life counted in training images, shortened early in training by a ramp
(at most `rampup` times the images seen so far), so the average forgets the random start quickly.

Built on `torch.optim.swa_utils.AveragedModel`: parameters are averaged, buffers (BatchNorm's
running statistics) are copied from the trained network, as StyleGAN2-ADA does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


class WeightAverage(nn.Module):
    """The averaged copy of `network`; `update` after every optimizer step of that network."""

    images_seen: Tensor

    def __init__(
        self, network: nn.Module, half_life_images: float = 10_000, rampup: float | None = 0.05
    ) -> None:
        super().__init__()
        if half_life_images <= 0 or (rampup is not None and rampup <= 0):
            raise ValueError(
                f"model.ema: half_life_images={half_life_images} and rampup={rampup} must be "
                "positive (rampup may be null for no ramp)"
            )
        self.half_life_images, self.rampup = float(half_life_images), rampup
        self.averaged = AveragedModel(network, avg_fn=self._blend, use_buffers=False)
        self.averaged.requires_grad_(False)  # no optimizer steps it: it only follows the network
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))
        self._beta = 0.0

    @property
    def network(self) -> nn.Module:
        return self.averaged.module

    def beta(self, batch_size: int) -> float:
        """How much of the average a step keeps: 0.5 per half-life of images."""
        half_life = self.half_life_images
        if self.rampup is not None:
            half_life = min(half_life, float(self.images_seen) * self.rampup)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, network: nn.Module, batch_size: int) -> None:
        self.images_seen += batch_size
        self._beta = self.beta(batch_size)
        self.averaged.update_parameters(network)

    def _blend(self, averaged: Tensor, current: Tensor, num_averaged: Tensor) -> Tensor:
        return torch.lerp(current, averaged, self._beta)
