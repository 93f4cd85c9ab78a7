"""Streaming through memory-mapped pixels without keeping them resident."""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import numpy as np


def release_rows(images: np.ndarray, start: int, stop: int) -> None:
    """Drop rows `start:stop` of memory-mapped pixels from this process's resident memory.

    A stage streaming once through a memory-mapped `images.npy` would otherwise keep every page it
    read resident (counted against it, though the kernel could reclaim them), so its peak would
    grow with the dataset. The pages come back from the file if read again; arrays in ordinary
    memory (or tensors) are left alone.
    """
    if not isinstance(images, np.ndarray) or not images.flags.c_contiguous or stop <= start:
        return
    mapping = images.base
    while mapping is not None and not isinstance(mapping, mmap.mmap):
        mapping = getattr(mapping, "base", None)
    if mapping is None:
        return
    base = np.frombuffer(mapping, dtype=np.uint8).__array_interface__["data"][0]
    first = images.__array_interface__["data"][0] - base + start * images.strides[0]
    last = min(first + (stop - start) * images.strides[0], len(mapping))
    first -= first % mmap.PAGESIZE
    mapping.madvise(mmap.MADV_DONTNEED, first, last - first)


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
