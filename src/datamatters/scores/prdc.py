"""Precision, recall, density and coverage of generated samples (k-NN in feature space).

Precision and recall (Kynkäänniemi et al. 2019) ask whether samples fall inside the real
manifold and real images inside the generated one; density and coverage (Naeem et al. 2020) are
their outlier-robust versions. Each manifold is the union of balls reaching every point's k-th
nearest neighbour.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors


def kth_neighbour_radius(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point."""
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, k]


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and fake rows")
    real_radius = kth_neighbour_radius(real, k)
    fake_radius = kth_neighbour_radius(fake, k)
    real_to_fake = _distances(real, fake)  # (n_real, n_fake)
    inside_real = real_to_fake < real_radius[:, None]  # fake j inside real i's ball
    inside_fake = real_to_fake < fake_radius[None, :]  # real i inside fake j's ball
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float(inside_fake.any(axis=1).mean()),
        "density": float(inside_real.sum(axis=0).mean() / k),
        "coverage": float((real_to_fake.min(axis=1) < real_radius).mean()),
    }


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0, None))
