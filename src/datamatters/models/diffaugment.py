"""DiffAugment (Zhao et al. 2020): differentiable augmentation of real and fake images alike.

A discriminator trained on a few thousand images memorises them and stops teaching the generator.
Augmenting what it sees curbs that, but only if fakes are augmented the same way as reals, in both
the discriminator's and the generator's step: then the generator is never rewarded for drawing
the augmentation itself, which is why this is leak-free where offline augmentation (the `augment`
stage, whose copies are training data) is not. Every transform is differentiable in the image, so
gradients reach the generator through it.

Images are in [-1, 1]; randomness comes from torch's global generator, seeded by the train stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

TRANSLATION_RATIO = 0.125  # shift by up to 1/8 of the side, as in the paper
CUTOUT_RATIO = 0.5  # a square of half the side set to the mid level


def _uniform(x: Tensor, *shape: int) -> Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, dtype=x.dtype)


def brightness(x: Tensor) -> Tensor:
    return x + (_uniform(x, 1, 1, 1) - 0.5)


def saturation(x: Tensor) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, 1, 1, 1) * 2) + mean


def contrast(x: Tensor) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, 1, 1, 1) + 0.5) + mean


def translation(x: Tensor, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Each image shifted by a random whole number of pixels; what moves in is the mid level."""
    n, _, height, width = x.shape
    reach_y, reach_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = torch.randint(-reach_y, reach_y + 1, (n, 1, 1), device=x.device)
    shift_x = torch.randint(-reach_x, reach_x + 1, (n, 1, 1), device=x.device)
    rows, cols = torch.meshgrid(
        torch.arange(height, device=x.device), torch.arange(width, device=x.device), indexing="ij"
    )
    rows = torch.clamp(rows[None] + shift_y + 1, 0, height + 1)
    cols = torch.clamp(cols[None] + shift_x + 1, 0, width + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def cutout(x: Tensor, ratio: float = CUTOUT_RATIO) -> Tensor:
    """A random square of each image (possibly cut by the border) set to the mid level."""
    n, _, height, width = x.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = torch.randint(0, height + (1 - size_y % 2), (n, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, width + (1 - size_x % 2), (n, 1, 1), device=x.device) - size_x // 2
    rows = torch.arange(height, device=x.device)[None, :, None]
    cols = torch.arange(width, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: Sequence[str] | str | None) -> tuple[str, ...]:
    """`["translation", "cutout"]` (or `"translation,cutout"`) -> its names, checked; empty or None
    is no augmentation."""
    parts = policy.split(",") if isinstance(policy, str) else list(policy or [])
    names = tuple(str(name).strip() for name in parts if str(name).strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"model.diffaugment: unknown transform(s) {unknown}; use a list drawn from "
            f"{', '.join(POLICIES)} (color for RGB images only), or [] for none"
        )
    return names


def diff_augment(x: Tensor, names: tuple[str, ...]) -> Tensor:
    """`x` through each named transform in order, each drawn afresh per image."""
    for name in names:
        for transform in POLICIES[name]:
            x = transform(x)
    return x
