"""The LightningDataModule over a materialised training set (the `augment` stage's output)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from datamatters.data.contract import StageData, read_stage_data
from datamatters.data.dataset import ImageArrayDataset, class_ids, class_names


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
            data = read_stage_data(self.data_dir, columns=("id", "label"))
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
