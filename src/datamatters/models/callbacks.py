"""Lightning callbacks that make a training run legible: sample grids and one line per epoch."""

from __future__ import annotations

import logging
import math
import os
import time

import lightning as L
import numpy as np
from PIL import Image
from torch import Tensor

from datamatters.atomic import atomic_path
from datamatters.models.generative import GenerativeModule

log = logging.getLogger("datamatters")


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


class EpochSummary(L.Callback):
    """One INFO line per epoch with every epoch-level metric and the epoch's wall time."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        elapsed = time.perf_counter() - self._started
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        parts = [f"epoch {trainer.current_epoch + 1}{total}"]
        parts += [f"{name}={value:.3f}" for name, value in epoch_metrics(trainer).items()]
        parts.append(f"({elapsed:.1f} s)")
        log.info(" ".join(parts))


def epoch_metrics(trainer: L.Trainer) -> dict[str, float]:
    """Scalar callback metrics under their plain names, preferring epoch means to last steps."""
    metrics = trainer.callback_metrics
    names = sorted({k.removesuffix("_epoch").removesuffix("_step") for k in metrics})
    result = {}
    for name in names:
        value = metrics.get(f"{name}_epoch", metrics.get(name))
        if value is not None and value.numel() == 1:
            result[name] = float(value)
    return result
