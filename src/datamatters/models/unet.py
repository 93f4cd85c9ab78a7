"""A compact UNet: the velocity network of the flow-matching models (`flow.py`).

It maps a noisy image x_t, its time t in [0, 1] (and a class id) to a velocity of the image's
shape. The layout follows `layout.py`: one resolution per doubling of the base grid, from the
image's own side down to the base (32 -> 32, 16, 8, 4; 28 -> 28, 14, 7; 64 -> 64, ..., 4), with
`widths` channels per resolution (capped at `max_multiplier` × `width`: the coarse maps are
cheap to compute but their weights would dominate the parameter count), so one config trains on
every supported image size.

Each resolution holds `blocks` residual blocks (GroupNorm, SiLU, 3×3 convolution, the time and
class embedding added between the two convolutions) on the way down and on the way up, and one
skip connection per resolution joins the two sides (Ronneberger et al. 2015; Ho et al. 2020's
residual blocks). Going up, a map is convolved to the finer width before its pixels are repeated,
which costs a quarter of convolving after.
An optional self-attention layer sits at the coarsest resolution (`attention`). The output
convolution starts at zero, so an untrained network predicts zero velocity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamatters.models.layout import scale_layout, widths

TIME_SCALE = 1000.0  # t in [0, 1] is embedded as a diffusion step in [0, 1000]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding N×`dim` of times `t` (N) in [0, 1] (Vaswani et al. 2017)."""
    half = dim // 2
    exponent = torch.arange(half, device=t.device, dtype=torch.float32) / half
    freqs = torch.exp(-math.log(max_period) * exponent)
    angles = (t.float() * TIME_SCALE)[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding.to(t.dtype if t.is_floating_point() else torch.float32)


def _groups(channels: int) -> int:
    """GroupNorm groups: up to 8, each of at least 2 channels where the width allows."""
    for groups in (8, 4, 2):
        if channels % groups == 0 and channels // groups >= 2:
            return groups
    return 1


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(_groups(channels), channels)


def _zero(module: nn.Module) -> nn.Module:
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class ResBlock(nn.Module):
    """Two 3×3 convolutions with the embedding added between them, plus a (1×1) shortcut."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = _norm(c_out)
        self.dropout = nn.Dropout(dropout)
        # the residual branch starts at zero: every block is the identity at initialisation
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a (small) map, residual, output zeroed."""

    def __init__(self, channels: int, head_dim: int = 32) -> None:
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # N×heads×HW×d each
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """Velocity network v(x_t, t, class): N×C×H×W images, N times in [0, 1] -> N×C×H×W.

    `width` channels at full resolution, doubling per coarser resolution (`layout.widths`) up
    to `max_multiplier` × `width`; `blocks` residual blocks per resolution and side; `attention`
    adds one self-attention layer at the coarsest resolution. With `num_classes` > 0 it is
    conditional: the class embedding has one more row, id `num_classes`, the "no class" token
    that classifier-free guidance trains and samples with; `labels=None` means "no class" for all.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        width: int = 32,
        num_classes: int = 0,
        blocks: int = 1,
        attention: bool = False,
        dropout: float = 0.0,
        max_multiplier: int = 2,
    ) -> None:
        super().__init__()
        if blocks < 1:
            raise ValueError(f"blocks must be at least 1, got {blocks}")
        num_scales, _ = scale_layout(image_size)
        self.channels, self.image_size = channels, image_size
        self.width, self.num_classes = width, num_classes
        # one resolution per doubling, from the image's side down to the base grid
        levels = [min(c, width * max_multiplier) for c in widths(width, num_scales + 1)]
        emb_dim = 4 * width
        self.time_mlp = nn.Sequential(
            nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        # one more row than classes: the null id that classifier-free guidance trains with
        self.label_embedding = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None

        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = width
        for i, c_out in enumerate(levels):
            stage = nn.ModuleList()
            for _ in range(blocks):
                stage.append(ResBlock(c, c_out, emb_dim, dropout))
                c = c_out
            self.down.append(stage)
            if i < len(levels) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid1 = ResBlock(c, c, emb_dim, dropout)
        self.attention = SelfAttention(c) if attention else nn.Identity()
        self.mid2 = ResBlock(c, c, emb_dim, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, c_skip in reversed(list(enumerate(levels))):
            stage = nn.ModuleList()
            for j in range(blocks):
                stage.append(ResBlock(c + c_skip if j == 0 else c, c_skip, emb_dim, dropout))
                c = c_skip
            self.up.append(stage)
            if i > 0:
                self.upsample.append(nn.Conv2d(c, levels[i - 1], 3, padding=1))
                c = levels[i - 1]
        self.norm_out = _norm(c)
        self.conv_out = _zero(nn.Conv2d(c, channels, 3, padding=1))

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.width).to(x.dtype))
        if self.label_embedding is not None:
            if labels is None:
                labels = torch.full((x.shape[0],), self.num_classes, device=x.device)
            emb = emb + self.label_embedding(labels.long())
        elif labels is not None:
            raise ValueError("this network is unconditional (num_classes=0) but got labels")

        h = self.conv_in(x)
        skips = []
        for i, stage in enumerate(self.down):
            for block in stage:
                h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.attention(self.mid1(h, emb)), emb)
        for i, stage in enumerate(self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in stage:
                h = block(h, emb)
            if i < len(self.upsample):
                # convolve at the coarse side, then repeat pixels: 4× cheaper than the reverse
                h = F.interpolate(self.upsample[i](h), scale_factor=2.0, mode="nearest")
        return self.conv_out(F.silu(self.norm_out(h)))
