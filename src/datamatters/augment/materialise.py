"""Build the training set: kept rows, plus `copies` augmented versions of each, materialised once.

Offline augmentation is seeded and written to disk so the exact pixels a model saw are versioned.
Augmentation that must see real and fake images alike (DiffAugment) belongs to the model instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from datamatters.data.contract import StageData, pixel_sha256

log = logging.getLogger("datamatters")

Transform = Callable[..., dict]
CARRIED_COLUMNS = ("id", "source", "label", "sha256", "split", "label_source")


def materialise(kept: StageData, pipeline: Transform, copies: int) -> StageData:
    """The kept rows followed by `copies` augmented passes over them, in order."""
    originals = kept.manifest.loc[:, list(CARRIED_COLUMNS)].assign(
        parent_id=kept.manifest["id"], augmented=False
    )
    images, manifests = [kept.images], [originals]
    for copy in range(1, copies + 1):
        augmented = np.stack([_apply(pipeline, image) for image in kept.images])
        rows = originals.assign(
            id=originals["id"] + f"-aug{copy}",
            sha256=[pixel_sha256(image) for image in augmented],
            augmented=True,
        )
        images.append(augmented)
        manifests.append(rows)
        log.info("augmented copy %d/%d: %d images", copy, copies, len(augmented))
    return StageData(np.concatenate(images), pd.concat(manifests, ignore_index=True))


def _apply(pipeline: Transform, image: np.ndarray) -> np.ndarray:
    out = pipeline(image=np.ascontiguousarray(image))["image"]
    return np.asarray(out, dtype=np.uint8).reshape(image.shape)
