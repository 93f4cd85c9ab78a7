"""Output-quality metrics of a generator measured with the judge: FID, KID and Inception Score."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

# The submodules, not `torchmetrics.image`: it only exports these when torch-fidelity (and with
# it Inception's weights) is installed, which a custom feature extractor does not need.
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from datamatters.metrics.judge_features import JudgeFeatures, JudgeLogits
from datamatters.models.networks import JudgeNet


def to_uint8(images_01: Tensor) -> np.ndarray:
    """Generated N×C×H×W floats in [0, 1] -> N×H×W×C uint8, the layout real images are stored in.

    Fakes go through the same 8-bit quantisation as real images, so the metrics cannot tell them
    apart by sub-integer pixel values.
    """
    pixels = (images_01.detach().cpu().float() * 255.0).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()


def generative_metrics(
    real: np.ndarray,
    fake: np.ndarray,
    judge: JudgeNet,
    batch_size: int = 256,
    kid_subset_size: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """FID, KID and IS of `fake` against `real` (both uint8 N×H×W×C) in judge feature space.

    The random subsets of KID and the split order of IS come from `seed`, so the same inputs give
    the same numbers; the caller's global random state is left untouched.
    """
    _check_images(real, "real")
    _check_images(fake, "fake")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real and fake images differ in shape: {real.shape} vs {fake.shape}")
    device = next(judge.parameters()).device
    features = JudgeFeatures(judge)
    fid = FrechetInceptionDistance(feature=features).to(device)
    with warnings.catch_warnings():
        # KID and IS warn that they keep every feature; the judge's are a few hundred bytes each.
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        kid = KernelInceptionDistance(
            feature=features, subset_size=min(kid_subset_size, len(real), len(fake))
        ).to(device)
        inception = InceptionScore(feature=JudgeLogits(judge)).to(device)
    for batch in _batches(real, batch_size, device):
        fid.update(batch, real=True)
        kid.update(batch, real=True)
    for batch in _batches(fake, batch_size, device):
        fid.update(batch, real=False)
        kid.update(batch, real=False)
        inception.update(batch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
        is_mean, is_std = inception.compute()
    return {
        "fid_judge": float(fid.compute()),
        "kid_judge_mean": float(kid_mean),
        "kid_judge_std": float(kid_std),
        "is_judge_mean": float(is_mean),
        "is_judge_std": float(is_std),
    }


def frechet_distance(
    real: np.ndarray, fake: np.ndarray, judge: JudgeNet, batch_size: int = 256
) -> float:
    """FID alone in judge feature space, for subsets (one class) too small for KID's subsets."""
    _check_images(real, "real")
    _check_images(fake, "fake")
    device = next(judge.parameters()).device
    fid = FrechetInceptionDistance(feature=JudgeFeatures(judge)).to(device)
    for images, is_real in ((real, True), (fake, False)):
        for batch in _batches(images, batch_size, device):
            fid.update(batch, real=is_real)
    return float(fid.compute())


def _check_images(images: np.ndarray, name: str) -> None:
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) < 2:
        raise ValueError(
            f"{name} images must be uint8 N×H×W×C with N >= 2, got {images.dtype} {images.shape}"
        )


def _batches(images: np.ndarray, batch_size: int, device: torch.device) -> Iterator[Tensor]:
    """uint8 N×C×H×W batches; copying slice by slice keeps memory-mapped arrays on disk."""
    for start in range(0, len(images), batch_size):
        batch = np.array(images[start : start + batch_size])
        yield torch.from_numpy(batch).to(device).permute(0, 3, 1, 2)
