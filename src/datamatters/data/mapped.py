"""Streaming through memory-mapped pixels without keeping them resident, and shards read as one."""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from datamatters.atomic import DISK_FULL, disk_full

GATHER_ROWS = 64  # scattered rows read between releases of a map's pages


def release_rows(images: np.ndarray, start: int, stop: int) -> None:
    """Drop rows `start:stop` of memory-mapped pixels from this process's resident memory.

    A stage streaming once through memory-mapped pixels would otherwise keep every page it read
    resident (counted against it, though the kernel could reclaim them), so its peak would grow
    with the dataset. The pages come back from the file if read again; arrays in ordinary
    memory (or tensors) are left alone.
    """
    if isinstance(images, ShardedImages | RowsOf):
        images.release(start, stop)
        return
    mapping = _mapping(images)
    if mapping is None or not images.flags.c_contiguous or stop <= start:
        return
    base = np.frombuffer(mapping, dtype=np.uint8).__array_interface__["data"][0]
    first = images.__array_interface__["data"][0] - base + start * images.strides[0]
    last = min(first + (stop - start) * images.strides[0], len(mapping))
    first -= first % mmap.PAGESIZE
    mapping.madvise(mmap.MADV_DONTNEED, first, last - first)


def release_map(images: np.ndarray) -> None:
    """Drop every page of the memory map under `images` (any view of it, strided or not) from
    resident memory: for scattered reads, whose rows are not one span `release_rows` could
    name. Arrays in ordinary memory are left alone."""
    mapping = _mapping(images)
    if mapping is not None:
        mapping.madvise(mmap.MADV_DONTNEED)


def release_scattered(images: np.ndarray | ShardedImages | RowsOf, rows: np.ndarray) -> None:
    """Drop from resident memory the pages around `rows` of `images` after a scattered read:
    every page of each memory map (each shard) holding one of them.

    A read of one row maps more than the row: the kernel maps the cached neighbours too (whole
    large folios of the page cache, filled by readahead), and releasing only the row's own bytes
    leaves them. Measured here (`benchmarks/release_pages.py`: 20,000 random 12 KB rows of a
    1.5 GB set in 47 shards, read from disk): each row released alone left 726 MiB resident;
    releasing each row's shard left 2.0 MiB, at 72 µs a row against 271 µs for releasing all
    47 shards. Arrays in ordinary memory are left alone.
    """
    if isinstance(images, RowsOf):
        release_scattered(images.images, images.rows[rows])
    elif isinstance(images, ShardedImages):
        images.release_shards_of(rows)
    else:
        release_map(images)


def gather(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`images[rows]` (a mask or row numbers) as an ordinary array, without keeping the map
    resident: read `GATHER_ROWS` rows at a time, the pages around them released after each
    (`release_scattered`).

    Reading scattered rows of a memory map faults in far more than the rows: measured here,
    1,000 random 12 KB rows of a 469 MB map left 370 MB of it resident, the kernel mapping the
    cached neighbours of every row read.
    """
    if isinstance(images, RowsOf):
        return gather(images.images, images.rows[rows])
    if not isinstance(images, ShardedImages) and _mapping(images) is None:
        return images[rows]
    rows = np.asarray(rows)
    rows = np.flatnonzero(rows) if rows.dtype == bool else rows
    out = np.empty((len(rows), *images.shape[1:]), dtype=np.uint8)
    for start in range(0, len(rows), GATHER_ROWS):
        part = rows[start : start + GATHER_ROWS]
        out[start : start + len(part)] = images[part]
        release_scattered(images, part)
    return out


def _mapping(images: object) -> mmap.mmap | None:
    """The memory map under `images`, if it is a view of one."""
    mapping = images.base if isinstance(images, np.ndarray) else None
    while mapping is not None and not isinstance(mapping, mmap.mmap):
        mapping = getattr(mapping, "base", None)
    return mapping


def read_chunks(
    images: np.ndarray, rows: np.ndarray, chunk: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """(where in `rows`, `images[rows]` there) `chunk` rows at a time, in order; each chunk's
    memory-mapped pages are released once the caller has used it, so one pass does not keep
    the whole set resident."""
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        yield slice(start, start + len(part)), np.asarray(images[part])
        release_rows(images, int(part.min()), int(part.max()) + 1)


def rows_per_chunk(images: np.ndarray, chunk_bytes: int, multiple: int = 1) -> int:
    """As many rows as fill `chunk_bytes` of pixels, rounded down to a multiple of `multiple`
    (a consumer's batch size, so chunking does not change its batches); at least `multiple`."""
    rows = chunk_bytes // (int(np.prod(images.shape[1:])) * images.itemsize)
    return max(multiple, rows - rows % multiple)


def scratch_array(shape: tuple[int, ...], directory: str | os.PathLike[str]) -> np.ndarray:
    """A zeroed uint8 array of `shape` backed by a nameless file in `directory`, not by memory.

    For a stage whose pixels pass through several steps before they are written (ingest decodes,
    splits and corrupts them): the array lives on disk, and with `release_rows` after each chunk
    the stage's resident memory stays bounded however many images there are. The file has no
    name from the start, so nothing is left behind when the process ends, however it ends. Put
    `directory` on a disk, not a memory filesystem such as a tmpfs `/tmp`.
    """
    size = int(np.prod(shape))
    if not size:
        return np.zeros(shape, dtype=np.uint8)
    with tempfile.TemporaryFile(dir=directory) as handle:
        try:  # claim the space now: a full disk then fails here, not as a SIGBUS mid-write
            os.posix_fallocate(handle.fileno(), 0, size)
        except OSError as error:
            if error.errno in DISK_FULL:
                raise disk_full(Path(directory)) from error
            raise
        return np.memmap(handle, dtype=np.uint8, mode="w+", shape=shape)


def write_rows(handle: BinaryIO, images: np.ndarray, chunk_bytes: int) -> None:
    """Write `images`' bytes in row order, `chunk_bytes` at a time, releasing each chunk's pages:
    what `np.save` writes after its header, without holding a memory-mapped array resident."""
    chunk = rows_per_chunk(images, chunk_bytes)
    for start in range(0, len(images), chunk):
        handle.write(np.ascontiguousarray(images[start : start + chunk]).tobytes())
        release_rows(images, start, min(start + chunk, len(images)))


class ShardedImages:
    """Memory-mapped shards (each uint8 n×H×W×C) indexed as one N×H×W×C array.

    Indexing behaves like NumPy's on one memory map: a row, or a slice within one shard, is a view
    of the map; a slice across shards, a boolean mask or a list of rows comes back as an ordinary
    array in the order asked. So every stage reads a sharded set exactly as it read one file.
    """

    dtype, itemsize = np.dtype(np.uint8), 1

    def __init__(self, shards: Sequence[np.ndarray]) -> None:
        if not shards:
            raise ValueError("a sharded array needs at least one shard")
        self.shards = list(shards)
        self.starts = np.concatenate([[0], np.cumsum([len(shard) for shard in shards])])
        self.shape = (int(self.starts[-1]), *shards[0].shape[1:])
        self.ndim = len(self.shape)
        self.nbytes = int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            row = int(key) + len(self) if key < 0 else int(key)
            if not 0 <= row < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} rows")
            shard = self._shard_of(np.array([row]))[0]
            return self.shards[shard][row - self.starts[shard]]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            shard = self._shard_of(np.array([start]))[0] if start < len(self) else 0
            if step == 1 and stop <= self.starts[shard + 1]:
                first = self.starts[shard]
                return self.shards[shard][start - first : max(start, stop) - first]
            key = np.arange(start, stop, step)
        return self._gather(np.asarray(key))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate(self.shards)
        return whole if dtype is None else whole.astype(dtype)

    def release(self, start: int, stop: int) -> None:
        """`release_rows` of rows `start:stop`, shard by shard."""
        for shard, images in enumerate(self.shards):
            low, high = max(start, self.starts[shard]), min(stop, self.starts[shard + 1])
            if low < high:
                release_rows(images, int(low - self.starts[shard]), int(high - self.starts[shard]))

    def release_shards_of(self, rows: np.ndarray) -> None:
        """Every page of each shard holding one of `rows` (`release_scattered`)."""
        for shard in np.unique(self._shard_of(np.asarray(rows))):
            release_map(self.shards[shard])

    def _shard_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, rows, side="right") - 1

    def _gather(self, key: np.ndarray) -> np.ndarray:
        if not key.size:
            key = key.astype(np.int64)
        if key.dtype == bool:
            if key.shape != (len(self),):
                raise IndexError(f"a mask of {key.shape} for {len(self)} rows")
            key = np.flatnonzero(key)
        if key.dtype.kind not in "iu" or key.ndim != 1:
            raise IndexError(
                f"index rows with ints, a slice, a mask or a 1-D row list, not {key!r}"
            )
        rows = np.where(key < 0, key + len(self), key).astype(np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows outside 0..{len(self) - 1}")
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        shards = self._shard_of(rows)
        for shard in np.unique(shards):
            at = np.flatnonzero(shards == shard)
            out[at] = self.shards[shard][rows[at] - self.starts[shard]]
        return out


def rows_of(images: np.ndarray | ShardedImages | RowsOf, rows: np.ndarray) -> RowsOf:
    """`images[rows]`, read only when asked for; a selection of a selection points at the rows
    underneath, so reading it costs one lookup whatever the depth."""
    if isinstance(images, RowsOf):
        return RowsOf(images.images, images.rows[rows])
    return RowsOf(images, rows)


class RowsOf:
    """The rows `rows` of `images` (a memory map or shards), indexed as one array and read only
    when asked for: so a set whose manifest points at rows elsewhere (the training set: kept
    originals in `data/raw`, then its own augmented copies) is never gathered whole in memory.
    """

    dtype, itemsize = np.dtype(np.uint8), 1

    def __init__(self, images: np.ndarray | ShardedImages, rows: np.ndarray) -> None:
        self.images, self.rows = images, np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.rows), *images.shape[1:])
        self.ndim = len(self.shape)
        self.nbytes = int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        picked = self.rows[key]  # a row, a slice, a mask or a row list: NumPy's own rules
        if np.ndim(picked) == 0:
            return self.images[int(picked)]
        return gather(self.images, picked)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = gather(self.images, self.rows)
        return whole if dtype is None else whole.astype(dtype)

    def release(self, start: int, stop: int) -> None:
        """The rows are scattered in `images`: release the maps around them."""
        release_scattered(self.images, self.rows[start:stop])
