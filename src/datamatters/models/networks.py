"""Plain networks for the generative models and the judge; the training logic lives elsewhere.

All networks share one layout rule (`scale_layout`): an image of side S is reached from a small
base grid by doubling its side `num_scales` times. Choosing the layout from the image size, not
from a per-size table, lets the same config train on 28×28 MNIST, 32×32 and 64×64 folders.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from numbers import Integral

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

MIN_SIZE = 8
MIN_BASE = 4
MAX_WIDTH_MULTIPLIER = 8


def scale_layout(image_size: int) -> tuple[int, int]:
    """Return `(num_scales, base)` with `base * 2**num_scales == image_size`.

    Takes at least two doublings, and more while the base grid stays at least 4 pixels wide:
    28 -> 7·2², 32 -> 4·2³, 64 -> 4·2⁴. Hence sides must be multiples of 4 (and at least 8,
    the smallest size the ingest stage accepts).
    """
    if not isinstance(image_size, Integral) or image_size < MIN_SIZE or image_size % 4:
        raise ValueError(
            f"image_size must be a multiple of 4 and at least {MIN_SIZE} (e.g. 28, 32, 64), "
            f"got {image_size!r}; set data.image_size to a supported size"
        )
    image_size = int(image_size)
    num_scales = 2
    while image_size % 2 ** (num_scales + 1) == 0 and image_size >> (num_scales + 1) >= MIN_BASE:
        num_scales += 1
    return num_scales, image_size >> num_scales


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Run `module` in eval mode without gradients, then restore every submodule's own mode.

    Sampling and measuring happen in the middle of training (callbacks, validation), which must
    not leave BatchNorm frozen or flip submodules a caller had deliberately put in eval mode.
    """
    modes = {sub: sub.training for sub in module.modules()}
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        for sub, training in modes.items():
            sub.training = training


def _widths(width: int, num_scales: int) -> list[int]:
    """Channel widths from the finest scale to the coarsest, doubling per scale up to 8x."""
    return [width * min(2**i, MAX_WIDTH_MULTIPLIER) for i in range(num_scales)]


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
    """DCGAN generator (Radford et al. 2016): transposed convolutions, BatchNorm, ReLU, tanh."""

    def __init__(
        self, latent_dim: int, channels: int, image_size: int, width: int = 64, num_classes: int = 0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.net = _upsampler(latent_dim + num_classes, channels, image_size, width)
        self.apply(_dcgan_init)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return torch.tanh(self.net(with_labels(z, labels, self.num_classes)))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator returning logits, so the loss can use the stable BCE-with-logits."""

    def __init__(
        self, channels: int, image_size: int, width: int = 64, num_classes: int = 0
    ) -> None:
        super().__init__()
        num_scales, base = scale_layout(image_size)
        self.num_classes = num_classes
        self.features = _downsampler(channels + num_classes, image_size, width, norm=True)
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


class JudgeNet(nn.Module):
    """Small domain classifier whose penultimate activations replace Inception features.

    Inception was trained on 299×299 photographs; a classifier trained on the reference split
    itself gives features that separate what matters in this domain (e.g. digit identity).
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        feature_dim: int = 128,
        width: int = 32,
    ) -> None:
        super().__init__()
        num_scales, base = scale_layout(image_size)
        widths = [width, *_widths(width, num_scales)]
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1, bias=False)]
        for c_in, c_out in pairwise(widths):
            layers += [
                nn.BatchNorm2d(c_in),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False),
            ]
        layers += [nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True), nn.Flatten()]
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Sequential(
            nn.Linear(widths[-1] * base * base, feature_dim), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Linear(feature_dim, num_classes)
        self.feature_dim = feature_dim
        self.channels, self.image_size = channels, image_size  # what it must be shown

    def features(self, x: Tensor) -> Tensor:
        return self.embed(self.trunk(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
