"""DCGAN training logic around plain generator and discriminator networks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn import Parameter
from torch.optim import Optimizer

from datamatters.models.generative import GenerativeModule

OptimizerFactory = Callable[[Iterable[Parameter]], Optimizer]


class DCGAN(GenerativeModule):
    """Non-saturating GAN with one optimizer per network, stepped by hand.

    Optimizers arrive as factories (Hydra `_partial_: true`) so the config chooses them while the
    module supplies its own parameters. With `classes` it is a conditional GAN: both networks see
    the class of each image, and fakes are drawn for the classes of the real batch.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        g_optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        latent_dim: int,
        classes: Sequence[str] | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__(latent_dim, classes, num_classes)
        # class names stay out of the logged hyperparameters (a list DVCLive cannot log as a
        # param); the checkpoint's config keeps them
        self.save_hyperparameters(
            ignore=["generator", "discriminator", "g_optimizer", "d_optimizer", "classes"]
        )
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return (self.generator(z, labels) + 1.0) / 2.0

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        condition = labels if self.conditional else None
        real = images * 2.0 - 1.0
        z = torch.randn(real.shape[0], self.latent_dim, device=self.device, dtype=real.dtype)
        fake = self.generator(z, condition)
        g_opt, d_opt = self.optimizers()
        d_loss = self._optimize(
            d_opt, lambda: self._discriminator_loss(real, fake.detach(), condition)
        )
        g_loss = self._optimize(g_opt, lambda: self._generator_loss(fake, condition))
        self.log_dict(
            {"g_loss": g_loss, "d_loss": d_loss},
            on_step=True,
            on_epoch=True,
            batch_size=real.shape[0],
        )

    def _optimize(self, optimizer: Optimizer, loss_fn: Callable[[], Tensor]) -> Tensor:
        """One step of one network; toggling skips gradients for the other network's weights."""
        self.toggle_optimizer(optimizer)
        loss = loss_fn()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self.untoggle_optimizer(optimizer)
        return loss.detach()

    def _discriminator_loss(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
        real_logits = self.discriminator(real, labels)
        fake_logits = self.discriminator(fake, labels)
        return F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))

    def _generator_loss(self, fake: Tensor, labels: Tensor | None) -> Tensor:
        """Non-saturating loss: maximise log D(G(z)), which keeps gradients alive early on."""
        logits = self.discriminator(fake, labels)
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def configure_optimizers(self) -> list[Optimizer]:
        return [
            self.g_optimizer(self.generator.parameters()),
            self.d_optimizer(self.discriminator.parameters()),
        ]
