"""Training logic for the judge: the domain classifier whose features the evaluate stage uses."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch.optim import Optimizer
from torch.utils.data import DataLoader

from datamatters.features.extract import extract
from datamatters.features.judge import JudgeLogits
from datamatters.models.judge_network import JudgeNet
from datamatters.models.progress import EpochSummary


class JudgeClassifier(L.LightningModule):
    """Cross-entropy classifier; `val_acc` tells whether its features are worth measuring with."""

    def __init__(
        self,
        network: JudgeNet,
        optimizer: Callable[[Iterable[Parameter]], Optimizer],
        max_shift: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network", "optimizer"])
        self.network = network
        self.optimizer = optimizer
        self.max_shift = max_shift

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        loss = F.cross_entropy(self.network(random_shift(images, self.max_shift)), labels)
        self.log("train_loss", loss, on_step=True, on_epoch=True, batch_size=labels.shape[0])
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self.network(images)
        metrics = {
            "val_loss": F.cross_entropy(logits, labels),
            "val_acc": (logits.argmax(dim=1) == labels).float().mean(),
        }
        self.log_dict(metrics, on_epoch=True, batch_size=labels.shape[0])

    def configure_optimizers(self) -> Optimizer:
        return self.optimizer(self.network.parameters())


def random_shift(images: Tensor, max_shift: float) -> Tensor:
    """Translate each image by up to `max_shift` of its side, filling with zeros.

    The reference split is small; without this the judge memorises positions and its accuracy
    on held-out reference images stalls a few points lower.
    """
    if max_shift <= 0:
        return images
    n = images.shape[0]
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    # affine_grid works in [-1, 1] coordinates: a shift of f of the side is 2f.
    theta[:, :, 2] = (torch.rand(n, 2, device=images.device) * 2 - 1) * 2 * max_shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def fit_classifier(
    network: JudgeNet,
    optimizer: Callable[[Iterable[Parameter]], Optimizer],
    train: DataLoader,
    max_epochs: int,
    max_shift: float = 0.0,
    accelerator: str = "auto",
    val: DataLoader | None = None,
) -> JudgeNet:
    """Train `network` with cross-entropy, deterministically; returns it on the CPU in eval mode.

    Both the judge and the label audit's cross-validated classifiers are trained here.
    """
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=1,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EpochSummary()],
    )
    trainer.fit(
        JudgeClassifier(network, optimizer, max_shift),
        train_dataloaders=train,
        val_dataloaders=val,
    )
    return network.cpu().eval()


def predict_proba(network: JudgeNet, images_uint8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """float64 N×K class probabilities of N×H×W×C uint8 images, the layout data stages write."""
    logits = extract(JudgeLogits(network), images_uint8, batch_size)
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def accuracy(network: JudgeNet, images_uint8: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy on N×H×W×C uint8 images."""
    if len(images_uint8) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"need one label per image: {len(labels)} labels, {len(images_uint8)} images"
        )
    return float((predict_proba(network, images_uint8).argmax(axis=1) == labels).mean())
