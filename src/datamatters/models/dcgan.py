"""GAN training logic around plain generator and discriminator networks: DCGAN and SNGAN."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn import Parameter
from torch.optim import Optimizer

from datamatters.models.diffaugment import diff_augment, parse_policy
from datamatters.models.generative import GenerativeModule

OptimizerFactory = Callable[[Iterable[Parameter]], Optimizer]


class DCGAN(GenerativeModule):
    """Non-saturating GAN with one optimizer per network, stepped by hand.

    Optimizers arrive as factories (Hydra `_partial_: true`) so the config chooses them while the
    module supplies its own parameters. With `classes` it is a conditional GAN: both networks see
    the class of each image, and fakes are drawn for the classes of the real batch. `diffaugment`
    (e.g. `[translation, cutout]`) augments what the discriminator sees of reals and fakes alike, in
    both steps (see `diffaugment.py`).
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
        ema: Mapping[str, Any] | None = None,
        diffaugment: Sequence[str] | None = None,
    ) -> None:
        super().__init__(latent_dim, classes, num_classes, ema)
        self.augmentations = parse_policy(diffaugment)
        # class names, the ema settings and the augmentations stay out of the logged
        # hyperparameters (config nodes DVCLive cannot log); params.yaml and the checkpoint
        # keep them
        self.save_hyperparameters(
            ignore=[
                "generator",
                "discriminator",
                "g_optimizer",
                "d_optimizer",
                "classes",
                "ema",
                "diffaugment",
            ]
        )
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.average_weights_of("generator")

    def render(self, network: nn.Module, z: Tensor, labels: Tensor | None) -> Tensor:
        return (network(z, labels) + 1.0) / 2.0

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        condition = labels if self.conditional else None
        real = images * 2.0 - 1.0
        z = torch.randn(real.shape[0], self.latent_dim, device=self.device, dtype=real.dtype)
        fake = self.generator(z, condition)
        g_opt, d_opt = self.optimizers()
        d_loss = self._optimize(
            d_opt,
            lambda: self._discriminator_loss(
                self._seen(real), self._seen(fake.detach()), condition
            ),
        )
        g_loss = self._optimize(g_opt, lambda: self._generator_loss(self._seen(fake), condition))
        self.update_average(real.shape[0])
        self.log_dict(
            {"g_loss": g_loss, "d_loss": d_loss},
            on_step=True,
            on_epoch=True,
            batch_size=real.shape[0],
        )

    def _seen(self, images: Tensor) -> Tensor:
        """Images as the discriminator sees them: through DiffAugment when it is on."""
        return diff_augment(images, self.augmentations) if self.augmentations else images

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


class SNGAN(DCGAN):
    """The hinge-loss GAN of Miyato et al. 2018, for a spectrally normalised discriminator.

    Pair it with `networks.SNDiscriminator` (`model=sngan`; `model=csngan` conditions it through
    a projection head, Miyato and Koyama 2018). Spectral normalisation bounds the discriminator's
    Lipschitz constant, which keeps its gradients informative and training steadier than DCGAN's.
    """

    def _discriminator_loss(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
        return (
            F.relu(1.0 - self.discriminator(real, labels)).mean()
            + F.relu(1.0 + self.discriminator(fake, labels)).mean()
        )

    def _generator_loss(self, fake: Tensor, labels: Tensor | None) -> Tensor:
        return -self.discriminator(fake, labels).mean()
