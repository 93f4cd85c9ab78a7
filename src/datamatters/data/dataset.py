"""Training images as a torch Dataset, and the class names and ids every model agrees on.

Apart from the train stage's data module so that the stages which only classify (the judge, the
label audit, evaluation) do not depend on how the generator's training batches are served.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from datamatters.data.contract import StageData
from datamatters.data.mapped import release_scattered

UNLABELED = -1


def class_names(labels: pd.Series) -> list[str]:
    """Sorted class names; the index of a name is its class id everywhere in the pipeline."""
    return sorted(labels.dropna().astype(str).unique())


def class_ids(labels: pd.Series, classes: list[str]) -> np.ndarray:
    """Class id per row; unlabeled rows and labels outside `classes` get UNLABELED."""
    index = {name: i for i, name in enumerate(classes)}
    ids = labels.astype("string").map(index)
    return ids.fillna(UNLABELED).to_numpy(dtype=np.int64)


def labeled_images(data: StageData) -> StageData:
    """The decodable rows that have a label."""
    manifest = data.manifest
    return data.select(
        manifest["decode_error"].isna().to_numpy() & manifest["label"].notna().to_numpy()
    )


class ImageArrayDataset(Dataset):
    """uint8 N×H×W×C images (or the `rows` of them) served as float C×H×W in [0, 1] with an
    integer class id per served image.

    `release_pages` drops a memory-mapped image's pages after each read, for a pass over a set
    too large to keep resident (the label audit); training that revisits a small set every epoch
    leaves them cached.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        rows: np.ndarray | None = None,
        release_pages: bool = False,
    ) -> None:
        self.images, self.labels, self.release_pages = images, labels, release_pages
        self.rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        if len(self.rows) != len(labels):
            raise ValueError(f"{len(labels)} labels for {len(self.rows)} images")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        row = int(self.rows[index])
        pixels = np.array(self.images[row])  # a copy: the array may be a read-only memmap
        if self.release_pages:
            release_scattered(self.images, np.array([row]))
        image = torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255.0)
        return image, int(self.labels[index])
