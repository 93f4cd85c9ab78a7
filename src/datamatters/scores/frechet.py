"""The Fréchet distance (FID) between feature sets, fast enough to bootstrap.

The one FID of the pipeline: the evaluate stage, the per-epoch curve, the judge's floor and
`datamatters fid` all call it on feature rows. Resampling generated features hundreds of times
needs the distance from cached reference statistics, so it works on a `Gaussian` of them; it is
tested against torchmetrics' FID on the same features (they agree to about 1e-6 relative).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Gaussian:
    """Mean and unbiased covariance of a feature set."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> Gaussian:
        features = np.asarray(features, dtype=np.float64)
        return cls(features.mean(axis=0), np.cov(features, rowvar=False))

    @cached_property
    def cov_root(self) -> np.ndarray:
        """Needed only when there are more samples than dimensions; seconds at 2048-d."""
        values, vectors = np.linalg.eigh(self.cov)
        return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(reference: Gaussian, features: np.ndarray) -> float:
    """||mu_r - mu_f||² + Tr(S_r) + Tr(S_f) - 2 Tr((S_r^½ S_f S_r^½)^½).

    With S_f = Xᵀ X / (n - 1) for the centred features X, the eigenvalues of S_r^½ S_f S_r^½
    are those of the n×n matrix X S_r Xᵀ / (n - 1): an n×n problem instead of a D×D one when
    there are fewer samples than feature dimensions (500 samples of 2048-d Inception features).
    """
    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    if n < 2:
        raise ValueError("FID needs at least 2 feature rows")
    mean = features.mean(axis=0)
    centred = (features - mean) / np.sqrt(n - 1)
    if n < centred.shape[1]:
        gram = centred @ reference.cov @ centred.T
    else:
        inner = centred @ reference.cov_root
        gram = inner.T @ inner
    root_trace = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0, None)).sum()
    fake_trace = np.einsum("ij,ij->", centred, centred)
    distance = np.sum((reference.mean - mean) ** 2) + np.trace(reference.cov) + fake_trace
    return float(distance - 2.0 * root_trace)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two sets of feature rows."""
    return frechet_distance(Gaussian.of(real), fake)


def bootstrap_interval(
    reference: Gaussian, features: np.ndarray, rounds: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """95% interval of FID from resampling the generated features with replacement.

    It measures how much FID moves with which samples were drawn, at this sample count; the
    reference is held fixed (the same cached statistics every experiment is compared against).
    A resample repeats about a third of its rows, which raises its FID by a roughly constant
    amount (measured: +7 on 500 Inception features of real digits), so the percentiles are
    taken around the resamples' median and re-centred on the FID of the features themselves.

    Written here rather than with `scipy.stats.bootstrap`, which would replace only the one line
    that draws a resample: none of its intervals is this one (its percentile interval keeps the
    resamples' upward shift, and BCa needs a jackknife, n more FIDs).
    """
    rng = np.random.default_rng(seed)
    n = len(features)
    values = [frechet_distance(reference, features[rng.integers(0, n, n)]) for _ in range(rounds)]
    tail = (1.0 - level) / 2 * 100
    low, middle, high = np.percentile(values, [tail, 50, 100 - tail])
    point = frechet_distance(reference, features)
    return float(point - (middle - low)), float(point + (high - middle))
