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
    """The kept rows followed by `copies` augmented passes over them, in order.

    Each augmented image is written straight into the one output array: the set is held once,
    not once as a list of passes and again when they are joined.
    """
    originals = kept.manifest.loc[:, list(CARRIED_COLUMNS)].assign(
        parent_id=kept.manifest["id"], augmented=False
    )
    count = len(kept.images)
    images = np.empty((count * (copies + 1), *kept.images.shape[1:]), dtype=np.uint8)
    images[:count] = kept.images
    manifests = [originals]
    for copy in range(1, copies + 1):
        augmented = images[copy * count : (copy + 1) * count]
        for row, image in enumerate(kept.images):
            augmented[row] = _apply(pipeline, image)
        manifests.append(
            originals.assign(
                id=originals["id"] + f"-aug{copy}",
                sha256=[pixel_sha256(image) for image in augmented],
                augmented=True,
            )
        )
        log.info("augmented copy %d/%d: %d images", copy, copies, count)
    return StageData(images, pd.concat(manifests, ignore_index=True))


def _apply(pipeline: Transform, image: np.ndarray) -> np.ndarray:
    out = pipeline(image=np.ascontiguousarray(image))["image"]
    return np.asarray(out, dtype=np.uint8).reshape(image.shape)
