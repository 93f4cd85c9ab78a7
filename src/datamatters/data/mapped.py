"""Streaming through memory-mapped pixels without keeping them resident."""

from __future__ import annotations

import mmap

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
