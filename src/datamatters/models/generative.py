"""The seam every generative model offers: `generate`, whatever its latents and sampler.

Grids, the per-epoch FID, the evaluate stage, `datamatters sample` and export all call
`generate` (or `sample`, its seeded convenience), so none of them cares whether a model draws an
image in one network call (a GAN, a VAE's decoder) or integrates an ODE over tens (a flow).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from datamatters.models.averaging import WeightAverage
from datamatters.models.layout import evaluating

FIXED_NOISE_SIZE = 64
FIXED_NOISE_SEED = 0


def images_budget(kimg: float, batch_size: int, world_size: int = 1) -> int:
    """Training batches (per process) that show the model `kimg` thousand images.

    The budget counts images, not optimizer steps (StyleGAN's kimg), so a GAN with several
    discriminator steps per generator step and a flow with one step per batch see the same data;
    each model turns batches into Lightning's step count (`optimizer_steps`). Under DDP every step
    sees one batch per process.
    """
    if kimg <= 0:
        raise ValueError(f"train.kimg must be positive, got {kimg}")
    return max(1, math.ceil(kimg * 1000 / (batch_size * world_size)))


class GenerativeModule(L.LightningModule):
    """Base class: subclasses say how noise becomes images (`render`); generating is shared.

    `latent_shape` is the noise of one image: `(latent_dim,)` for a GAN or a VAE's decoder, the
    image's own C×H×W for a flow. The module owns it, so callers ask for images, never latents.

    `classes` (names, in class-id order) makes a model conditional: it is given a class id per
    image and the evaluate stage checks that it draws the class it was asked for. The train stage
    sets it and `num_classes` (which the networks' configs interpolate) from the training data,
    and the checkpoint keeps both.

    `fixed_noise` is a buffer drawn from a fixed seed, so sample grids show the same latents at
    every epoch and in every experiment, and it travels with the checkpoint.

    `ema` (`{enabled, half_life_images, rampup}`, see `averaging.py`) keeps an exponential moving
    average of the network samples come from (named by `average_weights_of`); every
    sample (grids, the per-epoch FID, the evaluate stage) then comes from the average, and the
    checkpoint carries both. `ema.enabled: false` samples from the raw weights, for comparison.
    """

    fixed_noise: Tensor

    def __init__(
        self,
        latent_shape: Sequence[int],
        classes: Sequence[str] | None = None,
        num_classes: int | None = None,
        ema: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.ema_config = dict(ema or {"enabled": False})
        self.average: WeightAverage | None = None
        self.latent_shape = tuple(int(size) for size in latent_shape)
        self.classes = [str(c) for c in classes] if classes else []
        if len(self.classes) != (num_classes or 0):
            raise ValueError(
                f"num_classes={num_classes} but {len(self.classes)} class names were given; "
                "a conditional model needs both, from the same training data"
            )
        generator = torch.Generator().manual_seed(FIXED_NOISE_SEED)
        self.register_buffer(
            "fixed_noise", torch.randn(FIXED_NOISE_SIZE, *self.latent_shape, generator=generator)
        )

    def optimizer_steps(self, batches: int) -> int:
        """Lightning's step count after `batches` training batches, so a budget of images maps
        to `max_steps`; one optimizer step per batch unless a subclass steps more."""
        return batches

    def average_weights_of(self, sampler: str) -> None:
        """Name the attribute of the network samples come from; with `ema` enabled, average it."""
        self._sampler = sampler
        settings = {k: v for k, v in self.ema_config.items() if k != "enabled"}
        if self.ema_config.get("enabled", False):
            self.average = WeightAverage(getattr(self, sampler), **settings)

    def sampling_network(self) -> nn.Module:
        """The network samples come from: the weight average when the model keeps one."""
        return self.average.network if self.average is not None else getattr(self, self._sampler)

    def update_average(self, batch_size: int) -> None:
        """Call after each optimizer step of the sampling network."""
        if self.average is not None:
            self.average.update(getattr(self, self._sampler), batch_size)

    @property
    def conditional(self) -> bool:
        return bool(self.classes)

    def balanced_labels(self, n: int) -> Tensor | None:
        """Class ids 0, 1, ..., C-1, 0, 1, ... for `n` images; None for an unconditional model."""
        return torch.arange(n) % len(self.classes) if self.conditional else None

    def decode(self, z: Tensor, labels: Tensor | None = None, preview: bool = False) -> Tensor:
        """Map noise N×`latent_shape` (and class ids N) to images N×C×H×W in [0, 1]."""
        return self.render(self.sampling_network(), z, labels, preview)

    def render(
        self, network: nn.Module, z: Tensor, labels: Tensor | None, preview: bool = False
    ) -> Tensor:
        """Images in [0, 1] from `network` (the sampler or its average), as the model maps them.

        `preview` asks for a cheaper draw for monitoring during training (a flow integrates with
        fewer steps); a one-call generator ignores it.
        """
        raise NotImplementedError

    def generate(
        self,
        n: int,
        labels: Tensor | Sequence[int] | None = None,
        generator: torch.Generator | None = None,
        *,
        batch_size: int = 256,
        preview: bool = False,
    ) -> Tensor:
        """`n` images in [0, 1] on the CPU: the one way anything draws from a model.

        A conditional model draws `labels` (default: balanced over its classes). The noise is
        drawn at once on the CPU from `generator`, so a seeded generator gives the same images on
        any device and for any `batch_size`, which only bounds memory.
        """
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        if labels is not None and (not self.conditional or len(labels) != n):
            raise ValueError(
                f"labels: give {n} class ids to a conditional model, none to an unconditional one"
            )
        labels = self.balanced_labels(n) if labels is None else torch.as_tensor(labels)
        z = torch.randn(n, *self.latent_shape, generator=generator)
        batches = range(math.ceil(n / batch_size))
        return torch.cat([self._render_batch(z, labels, i, batch_size, preview) for i in batches])

    def sample(
        self,
        n: int,
        seed: int | None = None,
        batch_size: int = 256,
        labels: Tensor | Sequence[int] | None = None,
        preview: bool = False,
    ) -> Tensor:
        """`generate` with a seed: the images then depend on the weights alone."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return self.generate(n, labels, generator, batch_size=batch_size, preview=preview)

    def sample_fixed(self, preview: bool = False) -> Tensor:
        """Images in [0, 1] from `fixed_noise`, comparable across epochs and experiments."""
        labels = self.balanced_labels(len(self.fixed_noise))
        return self._render_batch(self.fixed_noise, labels, 0, len(self.fixed_noise), preview)

    def _render_batch(
        self, z: Tensor, labels: Tensor | None, index: int, size: int, preview: bool
    ) -> Tensor:
        """Batch `index` of the noise, decoded with BatchNorm running statistics, so an image
        depends on its noise alone."""
        part = slice(index * size, (index + 1) * size)
        with evaluating(self):
            condition = None if labels is None else labels[part].to(self.device)
            images = self.decode(z[part].to(self.device, self.dtype), condition, preview)
            return images.clamp(0.0, 1.0).cpu()


def with_classes(model_config: DictConfig, classes: Sequence[str]) -> DictConfig:
    """A conditional model's config (one with a `classes` key) completed for these classes.

    Sets `classes` and every `num_classes` in the tree (the networks' too): params.yaml holds
    resolved values, so the networks cannot interpolate a count that only the data knows.
    """
    completed = model_config.copy()
    completed.classes = list(classes)

    def fill(node: DictConfig) -> None:
        for key, value in node.items():
            if key == "num_classes":
                node[key] = len(classes)
            elif isinstance(value, DictConfig):
                fill(value)

    fill(completed)
    return completed
