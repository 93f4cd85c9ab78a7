"""The layout rule every network here shares, and the sampling mode switch.

An image of side S is reached from a small base grid by doubling its side `num_scales` times.
Choosing the layout from the image size, not from a per-size table, lets the same config train on
28×28 MNIST, 32×32 and 64×64 folders. The judge's network and the generators' both read it, so it
lives apart from either: editing a generator never touches what the judge depends on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral

import torch
from torch import nn

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


def widths(width: int, num_scales: int) -> list[int]:
    """Channel widths from the finest scale to the coarsest, doubling per scale up to 8x."""
    return [width * min(2**i, MAX_WIDTH_MULTIPLIER) for i in range(num_scales)]
