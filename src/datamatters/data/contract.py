"""The data contract between stages: a directory with `manifest.parquet` and the rows' pixels.

`manifest.parquet` has one row per image. A stage that makes pixels writes them beside it in
`images/`, uint8 N×H×W×C in the manifest's order, cut into `.npy` shards of at most
`SHARD_BYTES` (`000000.npy`, `000001.npy`, ...; row r is in shard r // rows-per-shard), each
memory-mapped when read. DVC caches every shard as its own file, so a dataset in which a few
images changed shares its other shards with the previous version in the cache and on a remote.
A stage that only decides (reference_quality, quality, labeling) writes no pixels: its
`pixels.json` names the sibling directory that holds them and its manifest's `pixel_row` says
which row, so the pixels are stored once however many stages judge them. A directory may do
both (the training set: it points at the kept originals and holds its augmented copies, whose
rows are numbered after the pointed directory's). Readers never see the difference. Rows are
never silently dropped: a removed image keeps its row and says why.
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
from datamatters.data.mapped import RowsOf, ShardedImages, rows_of, write_rows
from datamatters.errors import InputError
from datamatters.pipeline import rerun_fix

IMAGES = "images"  # the folder of shards
SHARD_BYTES = 32 * 2**20  # pixels per shard: 2,730 images of 64×64 RGB, 32,768 of 32×32 grey
MANIFEST = "manifest.parquet"
POINTER = "pixels.json"
PIXEL_ROW = "pixel_row"
BASE_COLUMNS = ("id", "source", "sha256", "label", "split")
WRITE_CHUNK_BYTES = (
    16 * 2**20
)  # pixels written at a time, so a memory-mapped set never is all resident


@dataclass(frozen=True)
class PixelOrigin:
    """Where a `StageData`'s pixels were read from: a directory's `images/` and the row of each
    image in it, so a deciding stage can point at them instead of copying them."""

    directory: Path
    rows: np.ndarray


@dataclass
class StageData:
    images: np.ndarray
    manifest: pd.DataFrame
    origin: PixelOrigin | None = None

    def select(self, mask: np.ndarray | pd.Series) -> StageData:
        """The rows where `mask` holds, images, manifest and origin kept aligned.

        The pixels are not read here: the selection points at its rows (`mapped.RowsOf`) and
        its users read them as they go, so the judge's training set, say, is never gathered.
        """
        mask = np.asarray(mask, dtype=bool)
        origin = self.origin and PixelOrigin(self.origin.directory, self.origin.rows[mask])
        images = rows_of(self.images, np.flatnonzero(mask))
        return StageData(images, self.manifest[mask].reset_index(drop=True), origin)

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
            with ShardWriter(tmp / IMAGES, len(data.images), data.images.shape[1:]) as shards:
                shards.write(data.images)
            data.manifest.to_parquet(tmp / MANIFEST, index=False)
        else:
            (tmp / POINTER).write_text(pointer, encoding="utf-8")
            manifest.to_parquet(tmp / MANIFEST, index=False)


def write_stage_chunks(
    path: str | Path,
    chunks: Iterable[StageData],
    count: int,
    image_shape: tuple[int, ...],
    pointing: tuple[PixelOrigin, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Write a stage directory whose rows arrive in chunks, so its pixels are never all in
    memory; the files are byte for byte what `write_stage_data` writes for the same rows.

    `pointing` (where some rows' pixels already are, and those rows' manifest) puts those rows
    first without copying them: the directory then points at the sibling that holds them and
    its own shards hold only the rows from `chunks` (the training set: kept originals, then
    their augmented copies). Returns the manifest (small: one row per image)."""
    if count < 1 and pointing is None:
        raise ValueError(f"{path}: a stage directory written in chunks needs rows, got {count}")
    manifests = [] if pointing is None else [pointing[1]]
    with atomic_path(path) as tmp:
        tmp.mkdir()
        if count:
            with ShardWriter(tmp / IMAGES, count, image_shape) as shards:
                for chunk in chunks:
                    if problem := contract_problem(chunk):
                        raise ValueError(problem)
                    if chunk.images.shape[1:] != tuple(image_shape):
                        shape = chunk.images.shape[1:]
                        raise ValueError(f"chunk of {shape} images, not {image_shape}")
                    shards.write(chunk.images)
                    manifests.append(chunk.manifest)
        manifest = pd.concat(manifests, ignore_index=True)
        stored = manifest
        if pointing is not None:
            stored = manifest.assign(**{PIXEL_ROW: _rows_after(pointing[0], path, count)})
            pointer = json.dumps({"directory": pointing[0].directory.name}) + "\n"
            (tmp / POINTER).write_text(pointer, encoding="utf-8")
        stored.to_parquet(tmp / MANIFEST, index=False)
    return manifest


def _rows_after(origin: PixelOrigin, path: str | Path, count: int) -> np.ndarray:
    """Pixel rows of a directory that points at `origin` and holds `count` rows of its own: the
    pointed rows, then its own, numbered after every row of the pointed directory."""
    if _parent(origin.directory) != _parent(path):
        raise ValueError(f"{path} must sit beside {origin.directory}, which holds its pixels")
    pointed = sum(len(shard) for shard in _read_shards(origin.directory / IMAGES, ""))
    return np.concatenate([origin.rows, pointed + np.arange(count)])


class ShardWriter:
    """Writes `count` rows, arriving in runs of any length, into the shards of `folder`; each
    shard is byte for byte what `np.save` writes for its rows. Refuses a wrong total on close."""

    def __init__(self, folder: Path, count: int, image_shape: tuple[int, ...]) -> None:
        self.folder, self.count, self.image_shape = folder, count, tuple(image_shape)
        self.per_shard = max(1, SHARD_BYTES // max(1, int(np.prod(image_shape))))
        self.written, self.handle, self.left = 0, None, 0

    def __enter__(self) -> ShardWriter:
        self.folder.mkdir()
        if not self.count:  # an empty set still says its image shape
            self._open(0)
        return self

    def write(self, pixels: np.ndarray) -> None:
        while len(pixels):
            if self.handle is None:
                self._open(min(self.per_shard, self.count - self.written))
            if self.left <= 0:
                raise ValueError(f"{self.folder}: more rows than the {self.count} announced")
            now, pixels = pixels[: self.left], pixels[self.left :]
            write_rows(self.handle, now, WRITE_CHUNK_BYTES)
            self.written, self.left = self.written + len(now), self.left - len(now)
            if not self.left:
                self.handle.close()
                self.handle = None

    def __exit__(self, kind: object, *_: object) -> None:
        if self.handle is not None:
            self.handle.close()
        if kind is None and self.written != self.count:
            raise ValueError(f"{self.written} rows written, {self.count} announced")

    def _open(self, rows: int) -> None:
        shard = self.written // self.per_shard
        self.handle = (self.folder / f"{shard:06d}.npy").open("wb")
        header = {"descr": "|u1", "fortran_order": False, "shape": (rows, *self.image_shape)}
        np.lib.format.write_array_header_1_0(self.handle, header)
        self.left = rows


def read_stage_data(path: str | Path, columns: Iterable[str] = BASE_COLUMNS) -> StageData:
    """Load and validate a stage directory; an error's fix names the stage that writes it."""
    path = Path(path)
    rerun = rerun_fix(path)
    if not (path / MANIFEST).is_file():
        raise InputError(path / MANIFEST, "missing", rerun)
    if (path / POINTER).is_file():
        directory = _pointed_directory(path, rerun)
    elif (path / IMAGES).is_dir():
        directory = path
    else:
        raise InputError(path / IMAGES, "missing", rerun)
    shards = _read_shards(directory / IMAGES, rerun_fix(directory))
    own = directory != path and (path / IMAGES).is_dir()  # its own rows after the pointed ones
    if own:
        shards += _read_shards(path / IMAGES, rerun)
    images = np.asarray(shards[0]) if len(shards) == 1 else ShardedImages(shards)
    try:
        manifest = pd.read_parquet(path / MANIFEST)
    except (ValueError, OSError) as err:
        raise InputError(path, f"unreadable ({err})", rerun) from err
    rows = np.arange(len(images))
    if PIXEL_ROW in manifest.columns:
        rows = manifest.pop(PIXEL_ROW).to_numpy(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(images)):
            raise InputError(path / MANIFEST, f"{PIXEL_ROW} outside {directory / IMAGES}", rerun)
    identity = len(rows) == len(images) and np.array_equal(rows, np.arange(len(images)))
    pixels = images if identity else RowsOf(images, rows)
    data = StageData(pixels, manifest, None if own else PixelOrigin(directory, rows))
    if problem := contract_problem(data):
        raise InputError(path, problem, rerun)
    missing = [c for c in columns if c not in manifest.columns]
    if missing:
        raise InputError(path / MANIFEST, f"missing columns {missing}", rerun)
    return data


def _read_shards(folder: Path, rerun: str) -> list[np.ndarray]:
    """The shards of `folder`, memory-mapped, in order."""
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    expected = [f"{k:06d}.npy" for k in range(len(names))]
    if not names or names != expected:
        found = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "") or "nothing"
        raise InputError(folder, f"holds {found}, not shards 000000.npy, 000001.npy, ...", rerun)
    try:
        shards = [np.load(folder / name, mmap_mode="r", allow_pickle=False) for name in names]
    except (ValueError, OSError) as err:
        raise InputError(folder, f"unreadable ({err})", rerun) from err
    if any(s.dtype != np.uint8 or s.shape[1:] != shards[0].shape[1:] for s in shards):
        raise InputError(folder, "shards of different image shapes or types", rerun)
    return shards


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
    if not (directory / IMAGES).is_dir():
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
