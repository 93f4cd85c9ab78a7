"""The LightningDataModule over a materialised training set (the `augment` stage's output)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from datamatters.data.contract import StageData, read_stage_data

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
    """uint8 N×H×W×C images served as float C×H×W in [0, 1] with an integer class id."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(np.array(self.images[index])).permute(
            2, 0, 1
        )  # copy: the array may be a read-only memmap
        return image.float().div_(255.0), int(self.labels[index])


class ResumableDataLoader(DataLoader):
    """A shuffling DataLoader that resumes mid-epoch at the batch it stopped at.

    Lightning checkpoints a loader with `state_dict`/`load_state_dict`; a plain one restarts its
    epoch from a fresh shuffle, so a resumed run would train on other batches. This one records
    its generator's state when an epoch's iterator starts and, after a restore, replays that epoch
    and skips the batches already trained on (loading them: cheap next to training on them).
    Lightning does not fetch ahead from a loader with a length, so the batches handed out are
    the batches trained on.
    """

    _epoch_start: torch.Tensor | None = None
    _position = 0
    _restore: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        skip = 0
        if self._restore is not None:
            if self.generator is not None:
                self.generator.set_state(self._restore["generator"])
            skip, self._restore = self._restore["consumed"], None
        self._epoch_start = None if self.generator is None else self.generator.get_state()
        return self._batches(super().__iter__(), skip)

    def _batches(self, batches: Iterable[Any], skip: int) -> Iterator[Any]:
        self._position = 0
        for index, batch in enumerate(batches):
            self._position = index + 1
            if index >= skip:
                yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._epoch_start, "consumed": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restore = state


class ImageDataModule(L.LightningDataModule):
    """`labeled_only` serves only rows with a label: what a conditional model can learn from."""

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        labeled_only: bool = False,
    ) -> None:
        super().__init__()
        self.data_dir, self.batch_size, self.num_workers, self.seed = (
            data_dir,
            batch_size,
            num_workers,
            seed,
        )
        self.labeled_only = labeled_only
        self.data: StageData | None = None
        self.classes: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            data = read_stage_data(
                self.data_dir, stage="train", producer="augment", columns=("id", "label")
            )
            if self.labeled_only:
                data = data.select(data.manifest["label"].notna().to_numpy())
            self.data = data
            self.classes = class_names(data.manifest["label"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        self.setup()
        return tuple(self.data.images.shape[1:])

    def train_dataloader(self) -> DataLoader:
        self.setup()
        labels = class_ids(self.data.manifest["label"], self.classes)
        return ResumableDataLoader(
            ImageArrayDataset(self.data.images, labels),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(labels) > self.batch_size,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),
        )
