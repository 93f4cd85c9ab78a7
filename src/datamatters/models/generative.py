"""The interface every generative model offers to the evaluate stage and the callbacks."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from datamatters.models.networks import evaluating

FIXED_NOISE_SIZE = 64
FIXED_NOISE_SEED = 0


class GenerativeModule(L.LightningModule):
    """Base class: subclasses map latents to images in `decode`; sampling is shared.

    `fixed_noise` is a buffer drawn from a fixed seed, so sample grids show the same latents at
    every epoch and in every experiment, and it travels with the checkpoint.
    """

    fixed_noise: Tensor

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        generator = torch.Generator().manual_seed(FIXED_NOISE_SEED)
        self.register_buffer(
            "fixed_noise", torch.randn(FIXED_NOISE_SIZE, latent_dim, generator=generator)
        )

    def decode(self, z: Tensor) -> Tensor:
        """Map latents N×latent_dim to images N×C×H×W in [0, 1]."""
        raise NotImplementedError

    def sample(self, n: int, seed: int | None = None, batch_size: int = 256) -> Tensor:
        """`n` images in [0, 1], on the CPU; with a seed they depend on the weights alone.

        Latents are drawn on the CPU so a seed gives the same images on any device; batching
        bounds memory when the evaluate stage asks for tens of thousands of samples.
        """
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.latent_dim, generator=generator)
        return torch.cat([self._generate(chunk) for chunk in z.split(batch_size)])

    def sample_fixed(self) -> Tensor:
        """Images in [0, 1] from `fixed_noise`, comparable across epochs and experiments."""
        return self._generate(self.fixed_noise)

    def _generate(self, z: Tensor) -> Tensor:
        """Decode with BatchNorm running statistics, so an image depends on its latent alone."""
        with evaluating(self):
            return self.decode(z.to(self.device, self.dtype)).clamp(0.0, 1.0).cpu()
