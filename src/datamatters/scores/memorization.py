"""Memorisation: generated samples that sit closer to a training image than real images ever do.

A held-out real image is, by construction, not a copy of any training image, so its distance to
the nearest training image is what "a new image from this domain" looks like. A sample much nearer
a training image than that is a copy, however good it looks: the authenticity test of Alaa et
al. 2022 and the data-copying test of Meehan et al. 2020 rest on the same comparison. The
threshold is a low quantile of the reference split's distances rather than their minimum, so one
unusual reference image does not decide it.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

QUANTILE = 0.01


def memorization(
    train: np.ndarray, reference: np.ndarray, fake: np.ndarray, quantile: float = QUANTILE
) -> float:
    """The share of `fake` rows nearer their nearest `train` row than all but `quantile` of the
    `reference` rows are to theirs (features of one extractor). About `quantile` for a generator
    that draws new images like the held-out ones; more for one that reproduces its training set.
    """
    if min(len(train), len(reference), len(fake)) < 1:
        raise ValueError("memorization needs training, reference and generated features")
    nearest = NearestNeighbors(n_neighbors=1).fit(np.asarray(train, dtype=np.float64))
    real_gap = nearest.kneighbors(np.asarray(reference, dtype=np.float64))[0][:, 0]
    fake_gap = nearest.kneighbors(np.asarray(fake, dtype=np.float64))[0][:, 0]
    return float((fake_gap < np.quantile(real_gap, quantile)).mean())
