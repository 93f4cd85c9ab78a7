"""Plain networks for the GANs and the VAE; the training logic lives elsewhere.

Every network follows the layout rule of `layout.py` (a base grid doubled per scale), so one
config trains on 28×28, 32×32 and 64×64 images.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from datamatters.models.layout import scale_layout
from datamatters.models.layout import widths as _widths


def _dcgan_init(module: nn.Module) -> None:
    """DCGAN's N(0, 0.02) initialisation, which the published training recipe assumes."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _upsampler(latent_dim: int, channels: int, image_size: int, width: int) -> nn.Sequential:
    """Latent -> image-sized map: project onto the base grid, then double its side per block."""
    num_scales, base = scale_layout(image_size)
    widths = _widths(width, num_scales)[::-1]
    blocks = [(latent_dim, widths[0], base, 1, 0)]
    blocks += [(c_in, c_out, 4, 2, 1) for c_in, c_out in pairwise(widths)]
    layers: list[nn.Module] = [nn.Unflatten(1, (latent_dim, 1, 1))]
    for c_in, c_out, kernel, stride, padding in blocks:
        layers += [
            nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    layers.append(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1))
    return nn.Sequential(*layers)


def _downsampler(channels: int, image_size: int, width: int, norm: bool) -> nn.Sequential:
    """Image -> base-grid feature map by strided convolutions that halve the side per block."""
    num_scales, _ = scale_layout(image_size)
    widths = [channels, *_widths(width, num_scales)]
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(pairwise(widths)):
        layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not norm or i == 0))
        # DCGAN leaves the first discriminator layer unnormalised: it sees raw pixels.
        if norm and i > 0:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def check_labels(labels: Tensor | None, num_classes: int) -> None:
    """A conditional network needs class ids, an unconditional one (`num_classes=0`) none."""
    if not num_classes and labels is not None:
        raise ValueError("this network is unconditional (num_classes=0) but got labels")
    if num_classes and labels is None:
        raise ValueError(f"this network is conditional on {num_classes} classes: pass labels")


def with_labels(x: Tensor, labels: Tensor | None, num_classes: int) -> Tensor:
    """Append one-hot class ids to a batch: as features to a vector, as constant planes to a map.

    The classic conditioning of cGANs and CVAEs (Mirza & Osindero 2014; Sohn et al. 2015); a
    network built with `num_classes=0` is unconditional and takes no labels.
    """
    check_labels(labels, num_classes)
    if not num_classes:
        return x
    one_hot = nn.functional.one_hot(labels.long(), num_classes).to(x.dtype)
    if x.ndim == 2:
        return torch.cat([x, one_hot], dim=1)
    planes = one_hot[:, :, None, None].expand(-1, -1, *x.shape[2:])
    return torch.cat([x, planes], dim=1)


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016): transposed convolutions, BatchNorm, ReLU.

    `output="tanh"` squashes into [-1, 1] as the paper does; tanh only nears -1, so a black
    background comes out faintly grey. `output="linear"` leaves the last layer unbounded, as
    StyleGAN does: the discriminator sees the raw values, and rendering clamps them, so the
    generator can draw exact black.
    """

    def __init__(
        self,
        latent_dim: int,
        channels: int,
        image_size: int,
        width: int = 64,
        num_classes: int = 0,
        output: str = "tanh",
    ) -> None:
        super().__init__()
        if output not in ("tanh", "linear"):
            raise ValueError(f"output must be 'tanh' or 'linear', got {output!r}")
        self.num_classes = num_classes
        self.squash = output == "tanh"
        self.net = _upsampler(latent_dim + num_classes, channels, image_size, width)
        self.apply(_dcgan_init)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.net(with_labels(z, labels, self.num_classes))
        return torch.tanh(x) if self.squash else x


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator returning logits, so the loss can use the stable BCE-with-logits.

    `norm=False` drops BatchNorm, for losses with gradient penalties (R3GAN), whose per-image
    gradients BatchNorm would mix across the batch.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 64,
        num_classes: int = 0,
        norm: bool = True,
    ) -> None:
        super().__init__()
        num_scales, base = scale_layout(image_size)
        self.num_classes = num_classes
        self.features = _downsampler(channels + num_classes, image_size, width, norm=norm)
        self.head = nn.Conv2d(_widths(width, num_scales)[-1], 1, base, 1, 0)
        self.apply(_dcgan_init)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.features(with_labels(x, labels, self.num_classes))).flatten()


class SNDiscriminator(nn.Module):
    """Spectrally normalised discriminator (Miyato et al. 2018), logits out; no BatchNorm.

    Strided convolutions halve the side per scale, as DCGAN's do; the map is summed over space and
    read by a linear head. Conditional (`num_classes` > 0), it adds the projection term
    <embed(y), h> (Miyato and Koyama 2018) instead of feeding the class in as image planes.
    """

    def __init__(
        self, channels: int, image_size: int, width: int = 64, num_classes: int = 0
    ) -> None:
        super().__init__()
        num_scales, _ = scale_layout(image_size)
        widths = [channels, *_widths(width, num_scales)]
        layers: list[nn.Module] = []
        for c_in, c_out in pairwise(widths):
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.1)]
        self.num_classes = num_classes
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(widths[-1], 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, widths[-1])) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(x).sum(dim=(2, 3))
        logits = self.head(h).flatten()
        check_labels(labels, self.num_classes)
        if self.embed is None:
            return logits
        return logits + (self.embed(labels.long()) * h).sum(dim=1)


class VAEEncoder(nn.Module):
    """Convolutional encoder to the parameters of a diagonal Gaussian posterior."""

    def __init__(
        self, channels: int, image_size: int, latent_dim: int, width: int = 32, num_classes: int = 0
    ) -> None:
        super().__init__()
        num_scales, base = scale_layout(image_size)
        self.num_classes = num_classes
        self.features = _downsampler(channels + num_classes, image_size, width, norm=False)
        self.head = nn.Linear(_widths(width, num_scales)[-1] * base * base, 2 * latent_dim)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        features = self.features(with_labels(x, labels, self.num_classes))
        mu, logvar = self.head(features.flatten(1)).chunk(2, dim=1)
        return mu, logvar


class VAEDecoder(nn.Module):
    """Mirror of the encoder; returns Bernoulli logits so the loss can stay in logit space."""

    def __init__(
        self, latent_dim: int, channels: int, image_size: int, width: int = 32, num_classes: int = 0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = _upsampler(latent_dim + num_classes, channels, image_size, width)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_labels(z, labels, self.num_classes))
