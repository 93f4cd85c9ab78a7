"""Build the training set: kept rows, plus `copies` augmented versions of each.

The kept rows stay where they are (the training set points at them); only the augmented copies
are new pixels, materialised once.

Offline augmentation is seeded and written to disk so the exact pixels a model saw are versioned.
Augmentation that must see real and fake images alike (DiffAugment) belongs to the model instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from datamatters.data.contract import StageData, pixel_sha256
from datamatters.data.mapped import read_chunks, rows_per_chunk

log = logging.getLogger("datamatters")

Transform = Callable[..., dict]
CARRIED_COLUMNS = ("id", "source", "label", "sha256", "split", "label_source")
CHUNK_BYTES = 16 * 2**20  # pixels read (and written) at a time


def originals(manifest: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The training set's first rows: the kept rows as they are. Their pixels are not copied;
    the training set points at them (`write_stage_chunks(pointing=...)`)."""
    return (
        manifest.loc[keep, list(CARRIED_COLUMNS)]
        .reset_index(drop=True)
        .assign(parent_id=lambda m: m["id"], augmented=False)
    )


def augmented_copies(
    data: StageData, keep: np.ndarray, pipeline: Transform, copies: int
) -> Iterator[StageData]:
    """`copies` augmented passes over the rows of `data` where `keep` holds, in that order, a
    chunk at a time: `write_stage_chunks` writes them as they come, so neither the kept images
    nor the copies are ever whole in memory.

    The passes draw from the augmentation's random state in the same order whatever the chunk
    size, so the set is the same as one built in memory.
    """
    rows = np.flatnonzero(keep)
    kept = originals(data.manifest, keep)
    chunk = rows_per_chunk(data.images, CHUNK_BYTES)
    for copy in range(1, copies + 1):
        for where, pixels in read_chunks(data.images, rows, chunk):
            augmented = np.stack([_apply(pipeline, image) for image in pixels])
            part = kept.iloc[where]
            manifest = part.assign(
                id=part["id"] + f"-aug{copy}",
                sha256=[pixel_sha256(image) for image in augmented],
                augmented=True,
            )
            yield StageData(augmented, manifest.reset_index(drop=True))
        log.info("augmented copy %d/%d: %d images", copy, copies, len(rows))


def _apply(pipeline: Transform, image: np.ndarray) -> np.ndarray:
    out = pipeline(image=np.ascontiguousarray(image))["image"]
    return np.asarray(out, dtype=np.uint8).reshape(image.shape)
