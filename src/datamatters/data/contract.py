"""The data contract between stages: a directory with `images.npy` and `manifest.parquet`.

`images.npy` is uint8 N×H×W×C and `manifest.parquet` has one row per image in the same order.
Rows are never silently dropped: a removed image keeps its row and says why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datamatters.atomic import atomic_path
from datamatters.errors import InputError
from datamatters.pipeline import rerun_fix

IMAGES = "images.npy"
MANIFEST = "manifest.parquet"
BASE_COLUMNS = ("id", "source", "sha256", "label", "split")


@dataclass
class StageData:
    images: np.ndarray
    manifest: pd.DataFrame

    def select(self, mask: np.ndarray | pd.Series) -> StageData:
        """The rows where `mask` holds, images and manifest kept aligned."""
        mask = np.asarray(mask, dtype=bool)
        return StageData(self.images[mask], self.manifest[mask].reset_index(drop=True))


def kept_rows(data: StageData) -> StageData:
    """The rows a checking stage decided to keep; a row without pixels never passes."""
    manifest = data.manifest
    return data.select(manifest["keep"].to_numpy(bool) & manifest["decode_error"].isna().to_numpy())


def pixel_sha256(pixels: np.ndarray) -> str:
    """The identity of an image in every manifest: the hash of its decoded pixels, not its file."""
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


def write_stage_data(path: str | Path, data: StageData) -> None:
    """Write both files into a fresh directory that replaces `path` only once complete."""
    if problem := contract_problem(data):
        raise ValueError(problem)
    with atomic_path(path) as tmp:
        tmp.mkdir()
        np.save(tmp / IMAGES, np.ascontiguousarray(data.images), allow_pickle=False)
        data.manifest.to_parquet(tmp / MANIFEST, index=False)


def read_stage_data(path: str | Path, columns: Iterable[str] = BASE_COLUMNS) -> StageData:
    """Load and validate a stage directory; an error's fix names the stage that writes it."""
    path = Path(path)
    rerun = rerun_fix(path)
    for name in (IMAGES, MANIFEST):
        if not (path / name).is_file():
            raise InputError(path / name, "missing", rerun)
    try:
        images = np.load(path / IMAGES, mmap_mode="r", allow_pickle=False)
        manifest = pd.read_parquet(path / MANIFEST)
    except (ValueError, OSError) as err:
        raise InputError(path, f"unreadable ({err})", rerun) from err
    data = StageData(np.asarray(images), manifest)
    if problem := contract_problem(data):
        raise InputError(path, problem, rerun)
    missing = [c for c in columns if c not in manifest.columns]
    if missing:
        raise InputError(path / MANIFEST, f"missing columns {missing}", rerun)
    return data


def contract_problem(data: StageData) -> str | None:
    """What breaks the contract in `data`'s shapes, if anything; checked on write and on read."""
    if data.images.dtype != np.uint8 or data.images.ndim != 4:
        return f"images must be uint8 N×H×W×C, got {data.images.dtype} {data.images.shape}"
    if len(data.images) != len(data.manifest):
        return f"{len(data.images)} images but {len(data.manifest)} manifest rows"
    return None
