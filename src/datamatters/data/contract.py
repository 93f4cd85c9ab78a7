"""The data contract between stages: a directory with `manifest.parquet` and the rows' pixels.

`manifest.parquet` has one row per image. A stage that makes pixels (ingest, augment) writes them
beside it as `images.npy`, uint8 N×H×W×C in the manifest's order. A stage that only decides
(reference_quality, quality, labeling) writes no pixels: its `pixels.json` names the sibling
directory whose `images.npy` holds them and its manifest's `pixel_row` says which row, so the
pixels are stored once however many stages judge them. Readers never see the difference.
Rows are never silently dropped: a removed image keeps its row and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from datamatters.atomic import atomic_path
from datamatters.errors import InputError
from datamatters.pipeline import rerun_fix

IMAGES = "images.npy"
MANIFEST = "manifest.parquet"
POINTER = "pixels.json"
PIXEL_ROW = "pixel_row"
BASE_COLUMNS = ("id", "source", "sha256", "label", "split")


@dataclass(frozen=True)
class PixelOrigin:
    """Where a `StageData`'s pixels were read from: a directory's `images.npy` and the row of
    each image in it, so a deciding stage can point at them instead of copying them."""

    directory: Path
    rows: np.ndarray


@dataclass
class StageData:
    images: np.ndarray
    manifest: pd.DataFrame
    origin: PixelOrigin | None = None

    def select(self, mask: np.ndarray | pd.Series) -> StageData:
        """The rows where `mask` holds, images, manifest and origin kept aligned."""
        mask = np.asarray(mask, dtype=bool)
        origin = self.origin and PixelOrigin(self.origin.directory, self.origin.rows[mask])
        return StageData(self.images[mask], self.manifest[mask].reset_index(drop=True), origin)

    def with_manifest(self, manifest: pd.DataFrame) -> StageData:
        """The same pixels (and origin) under a stage's new decision columns."""
        return replace(self, manifest=manifest)


def kept_mask(manifest: pd.DataFrame) -> np.ndarray:
    """The rows a checking stage decided to keep; a row without pixels never passes."""
    return manifest["keep"].to_numpy(bool) & manifest["decode_error"].isna().to_numpy()


def kept_rows(data: StageData) -> StageData:
    return data.select(kept_mask(data.manifest))


def pixel_sha256(pixels: np.ndarray) -> str:
    """The identity of an image in every manifest: the hash of its decoded pixels, not its file."""
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


def write_stage_data(path: str | Path, data: StageData, pixels: bool = True) -> None:
    """Write a fresh directory that replaces `path` only once complete.

    With `pixels=False` (a stage that only decides) the directory points at the pixels `data` was
    read from instead of holding a copy; `path` must then be a sibling of that directory.
    """
    if problem := contract_problem(data):
        raise ValueError(problem)
    if not pixels:
        if data.origin is None:
            raise ValueError(f"{path}: pixels=False needs data read by read_stage_data")
        if _parent(data.origin.directory) != _parent(path):
            raise ValueError(
                f"{path}: a stage that only decides writes no pixels, so its output must sit "
                f"beside {data.origin.directory}, which holds them"
            )
        pointer = json.dumps({"directory": data.origin.directory.name}) + "\n"
        manifest = data.manifest.assign(**{PIXEL_ROW: data.origin.rows})
    with atomic_path(path) as tmp:
        tmp.mkdir()
        if pixels:
            np.save(tmp / IMAGES, np.ascontiguousarray(data.images), allow_pickle=False)
            data.manifest.to_parquet(tmp / MANIFEST, index=False)
        else:
            (tmp / POINTER).write_text(pointer, encoding="utf-8")
            manifest.to_parquet(tmp / MANIFEST, index=False)


def write_stage_chunks(
    path: str | Path, chunks: Iterable[StageData], count: int, image_shape: tuple[int, ...]
) -> pd.DataFrame:
    """Write a stage directory whose rows arrive in chunks, so its pixels are never all in
    memory; the files are byte for byte what `write_stage_data` writes for the same rows.
    Returns the manifest (small: one row per image)."""
    if count < 1:
        raise ValueError(f"{path}: a stage directory written in chunks needs rows, got {count}")
    header = {"descr": "|u1", "fortran_order": False, "shape": (count, *image_shape)}
    manifests, written = [], 0
    with atomic_path(path) as tmp:
        tmp.mkdir()
        with (tmp / IMAGES).open("wb") as handle:
            np.lib.format.write_array_header_1_0(handle, header)
            for chunk in chunks:
                if problem := contract_problem(chunk):
                    raise ValueError(problem)
                if chunk.images.shape[1:] != tuple(image_shape):
                    raise ValueError(f"chunk of {chunk.images.shape[1:]} images, not {image_shape}")
                handle.write(np.ascontiguousarray(chunk.images).tobytes())
                manifests.append(chunk.manifest)
                written += len(chunk.images)
        if written != count:
            raise ValueError(f"{path}: {written} rows written, {count} announced")
        manifest = pd.concat(manifests, ignore_index=True)
        manifest.to_parquet(tmp / MANIFEST, index=False)
    return manifest


def read_stage_data(path: str | Path, columns: Iterable[str] = BASE_COLUMNS) -> StageData:
    """Load and validate a stage directory; an error's fix names the stage that writes it."""
    path = Path(path)
    rerun = rerun_fix(path)
    if not (path / MANIFEST).is_file():
        raise InputError(path / MANIFEST, "missing", rerun)
    if (path / POINTER).is_file():
        directory = _pointed_directory(path, rerun)
    elif (path / IMAGES).is_file():
        directory = path
    else:
        raise InputError(path / IMAGES, "missing", rerun)
    try:
        images = np.load(directory / IMAGES, mmap_mode="r", allow_pickle=False)
        manifest = pd.read_parquet(path / MANIFEST)
    except (ValueError, OSError) as err:
        raise InputError(path, f"unreadable ({err})", rerun) from err
    rows = np.arange(len(images))
    if PIXEL_ROW in manifest.columns:
        rows = manifest.pop(PIXEL_ROW).to_numpy(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(images)):
            raise InputError(path / MANIFEST, f"{PIXEL_ROW} outside {directory / IMAGES}", rerun)
    identity = len(rows) == len(images) and np.array_equal(rows, np.arange(len(images)))
    data = StageData(
        np.asarray(images) if identity else images[rows], manifest, PixelOrigin(directory, rows)
    )
    if problem := contract_problem(data):
        raise InputError(path, problem, rerun)
    missing = [c for c in columns if c not in manifest.columns]
    if missing:
        raise InputError(path / MANIFEST, f"missing columns {missing}", rerun)
    return data


def _parent(path: str | Path) -> Path:
    return Path(os.path.abspath(path)).parent


def _pointed_directory(path: Path, rerun: str) -> Path:
    """The sibling directory whose pixels `path`'s pointer names; never one elsewhere, so a
    manifest cannot make a stage read arbitrary files."""
    try:
        named = json.loads((path / POINTER).read_text(encoding="utf-8"))["directory"]
        directory = Path(os.path.normpath(path.parent / named))
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise InputError(path / POINTER, f"unreadable ({err})", rerun) from err
    if _parent(directory) != _parent(path) or directory.name in ("", "..", "."):
        raise InputError(
            path / POINTER,
            f"points outside {path.parent} ({named})",
            "point at a sibling; " + rerun,
        )
    if not (directory / IMAGES).is_file():
        raise InputError(
            directory / IMAGES, f"missing (it holds {path}'s pixels)", rerun_fix(directory)
        )
    return directory


def contract_problem(data: StageData) -> str | None:
    """What breaks the contract in `data`'s shapes, if anything; checked on write and on read."""
    if data.images.dtype != np.uint8 or data.images.ndim != 4:
        return f"images must be uint8 N×H×W×C, got {data.images.dtype} {data.images.shape}"
    if len(data.images) != len(data.manifest):
        return f"{len(data.images)} images but {len(data.manifest)} manifest rows"
    return None
