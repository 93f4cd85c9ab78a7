"""Callbacks of generator training: the sample grid and the judge FID after every epoch."""

from __future__ import annotations

import math
import os

import lightning as L
import numpy as np
from PIL import Image
from torch import Tensor

from datamatters.atomic import atomic_path
from datamatters.features.extract import extract, to_uint8
from datamatters.features.judge import JudgeFeatures
from datamatters.metrics.names import MetricName
from datamatters.models.generative import GenerativeModule
from datamatters.models.judge_network import JudgeNet
from datamatters.scores.frechet import fid


def make_grid(images: Tensor, nrow: int, padding: int = 2) -> np.ndarray:
    """Tile N×C×H×W images in [0, 1] into one H×W×C uint8 array, `nrow` images per row."""
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty N×C×H×W batch, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    pixels = (images.detach().cpu().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    grid = np.zeros(
        (rows * (h + padding) + padding, nrow * (w + padding) + padding, c), dtype=np.uint8
    )
    for i, image in enumerate(pixels):
        top = padding + (i // nrow) * (h + padding)
        left = padding + (i % nrow) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def save_png(grid: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Save an H×W×C uint8 array as PNG (grey as mode "L"), atomically."""
    if grid.shape[-1] not in (1, 3):
        raise ValueError(f"can only save 1- or 3-channel images, got {grid.shape[-1]} channels")
    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


class SampleGrid(L.Callback):
    """Render the module's fixed-latent samples as a square grid, so progress is visible.

    The grid is written at `path`, which dvc.yaml declares as a plot, so `dvc plots diff` shows
    two experiments' grids side by side; one file per run keeps git free of image series.
    """

    def __init__(self, path: str, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.path = path
        self.every_n_epochs = every_n_epochs
        self._rendered_step: int | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._render(trainer, pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Catch the final weights when training stopped between two scheduled grids."""
        if self._rendered_step != trainer.global_step:
            self._render(trainer, pl_module)

    def _render(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rendered_step = trainer.global_step
        if not trainer.is_global_zero:
            return
        if not isinstance(pl_module, GenerativeModule):
            raise TypeError(f"SampleGrid needs a GenerativeModule, got {type(pl_module).__name__}")
        samples = pl_module.sample_fixed()
        save_png(make_grid(samples, nrow=math.ceil(math.sqrt(len(samples)))), self.path)


EPOCH_FID_SEED = 1_000_003  # not the evaluate stage's seed: these samples are for the curve only


class EpochFID(L.Callback):
    """Judge FID after every training epoch: the curve of output quality over training.

    Cheap enough to run each epoch (a few hundred samples through the small judge, against the
    reference features of the `reference_features` stage; drawn with `preview=True`, so a flow
    integrates with its fewer `preview_steps`); logged through the trainer's logger,
    so DVCLive writes it beside the losses and `dvc plots` draws it.
    """

    def __init__(self, judge: JudgeNet, reference: np.ndarray, num_samples: int = 500) -> None:
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {num_samples}")
        self.extractor = JudgeFeatures(judge.eval())
        self.reference = reference
        self.num_samples = num_samples
        self.name = str(MetricName("fid", "judge", num_samples))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not isinstance(pl_module, GenerativeModule):
            raise TypeError(f"EpochFID needs a GenerativeModule, got {type(pl_module).__name__}")
        self.extractor.to(pl_module.device)
        fake = to_uint8(pl_module.sample(self.num_samples, seed=EPOCH_FID_SEED, preview=True))
        value = fid(self.reference, extract(self.extractor, fake))
        pl_module.log(self.name, value, on_step=False, on_epoch=True)
