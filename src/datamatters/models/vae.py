"""Variational autoencoder training logic around plain encoder and decoder networks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn import Parameter
from torch.optim import Optimizer

from datamatters.models.generative import GenerativeModule


class VAE(GenerativeModule):
    """Bernoulli-likelihood VAE; `kl_weight` != 1 gives a beta-VAE.

    Losses are summed over pixels and averaged over images, so they are the per-image negative
    ELBO and do not change meaning with the batch size. With `classes` it is a conditional VAE:
    encoder and decoder both see the class of each image.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        optimizer: Callable[[Iterable[Parameter]], Optimizer],
        latent_dim: int,
        kl_weight: float = 1.0,
        classes: Sequence[str] | None = None,
        num_classes: int | None = None,
        ema: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__((latent_dim,), classes, num_classes, ema)
        self.latent_dim = latent_dim
        self.save_hyperparameters(ignore=["encoder", "decoder", "optimizer", "classes", "ema"])
        self.encoder = encoder
        self.decoder = decoder
        self.optimizer = optimizer
        self.kl_weight = kl_weight
        self.average_weights_of("decoder")

    def render(
        self, network: nn.Module, z: Tensor, labels: Tensor | None, preview: bool = False
    ) -> Tensor:
        return torch.sigmoid(network(z, labels))

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.update_average(len(batch[0]))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        condition = labels if self.conditional else None
        n = images.shape[0]
        mu, logvar = self.encoder(images, condition)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.decoder(z, condition)
        recon = F.binary_cross_entropy_with_logits(logits, images, reduction="sum") / n
        kl = -0.5 * torch.sum(1.0 + logvar - mu.square() - logvar.exp()) / n
        loss = recon + self.kl_weight * kl
        self.log_dict(
            {"loss": loss, "recon_loss": recon, "kl": kl},
            on_step=True,
            on_epoch=True,
            batch_size=n,
        )
        return loss

    def configure_optimizers(self) -> Optimizer:
        return self.optimizer(self.parameters())
