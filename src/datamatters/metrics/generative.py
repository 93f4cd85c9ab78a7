"""Output-quality metrics from features computed once: FID, KID, IS, precision/recall, intervals.

Every metric is torchmetrics' (or `prdc`/`frechet`) applied to feature rows that an extractor
produced once, as NVIDIA's metrics code caches them: the reference split's features come from
their own DVC stage, and each generated set is passed through each extractor a single time.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

# The submodules, not `torchmetrics.image`: it only exports these when torch-fidelity (and with
# it Inception's weights) is installed, which a custom feature extractor does not need.
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from datamatters.metrics.frechet import Gaussian, bootstrap_interval
from datamatters.metrics.judge_features import JudgeFeatures, JudgeLogits
from datamatters.metrics.prdc import prdc
from datamatters.models.networks import JudgeNet


class FeatureRows(nn.Module):
    """The identity, as torchmetrics' `feature`: the metric is fed cached feature rows."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, rows: Tensor) -> Tensor:
        return rows.double()


def to_uint8(images_01: Tensor) -> np.ndarray:
    """Generated N×C×H×W floats in [0, 1] -> N×H×W×C uint8, the layout real images are stored in.

    Fakes go through the same 8-bit quantisation as real images, so the metrics cannot tell them
    apart by sub-integer pixel values.
    """
    pixels = (images_01.detach().cpu().float() * 255.0).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()


def extract(extractor: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """float64 rows of `extractor` over uint8 N×H×W×C images, a batch at a time."""
    _check_images(images, "images")
    device = next(extractor.parameters()).device
    rows = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.array(images[start : start + batch_size]))
            rows.append(extractor(batch.to(device).permute(0, 3, 1, 2)).double().cpu())
    return torch.cat(rows).numpy()


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    metric = FrechetInceptionDistance(feature=FeatureRows(real.shape[1]))
    metric.update(torch.from_numpy(np.asarray(real)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake)), real=False)
    return float(metric.compute())


def kid(real: np.ndarray, fake: np.ndarray, subset_size: int, seed: int) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        metric = KernelInceptionDistance(
            feature=FeatureRows(real.shape[1]), subset_size=min(subset_size, len(real), len(fake))
        )
    metric.update(torch.from_numpy(np.asarray(real)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake)), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_score(logits: np.ndarray, seed: int) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        metric = InceptionScore(feature=FeatureRows(logits.shape[1]))
    metric.update(torch.from_numpy(np.asarray(logits)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def feature_metrics(real: np.ndarray, fake: np.ndarray, cfg: DictConfig) -> dict[str, float]:
    """FID with its bootstrap 95% interval, KID, and precision/recall/density/coverage.

    `cfg`: `kid_subset_size`, `bootstrap_rounds` (0: no interval), `prdc_k`, `seed`.
    """
    scores = {"fid": fid(real, fake)}
    if cfg.bootstrap_rounds:
        low, high = bootstrap_interval(Gaussian.of(real), fake, cfg.bootstrap_rounds, cfg.seed)
        scores |= {"fid_ci95_low": low, "fid_ci95_high": high}
    scores["kid_mean"], scores["kid_std"] = kid(real, fake, cfg.kid_subset_size, cfg.seed)
    return scores | prdc(real, fake, k=cfg.prdc_k)


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
    real_rows = extract(JudgeFeatures(judge), real, batch_size)
    fake_rows = extract(JudgeFeatures(judge), fake, batch_size)
    kid_mean, kid_std = kid(real_rows, fake_rows, kid_subset_size, seed)
    is_mean, is_std = inception_score(extract(JudgeLogits(judge), fake, batch_size), seed)
    return {
        "fid_judge": fid(real_rows, fake_rows),
        "kid_judge_mean": kid_mean,
        "kid_judge_std": kid_std,
        "is_judge_mean": is_mean,
        "is_judge_std": is_std,
    }


def sample_tag(count: int) -> str:
    """1000 -> '1k', 2500 -> '2.5k', 500 -> '500'."""
    return f"{count / 1000:g}k" if count >= 1000 else str(count)


def _check_images(images: np.ndarray, name: str) -> None:
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) < 2:
        raise ValueError(
            f"{name} images must be uint8 N×H×W×C with N >= 2, got {images.dtype} {images.shape}"
        )
