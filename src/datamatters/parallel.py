"""Chunked work spread over worker processes, for the CPU-bound loops the GIL would serialise.

Decoding files and hashing images are per-item Python loops; threads do not speed them up, worker
processes do. Results come back in input order, so output is identical for any worker count.
`DATAMATTERS_WORKERS` caps the count (1 runs everything in this process).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS_ENV = "DATAMATTERS_WORKERS"
MIN_ITEMS_PER_WORKER = 256  # below this a worker costs more to start than it saves


def available_workers() -> int:
    """CPUs this process may use, or the `DATAMATTERS_WORKERS` cap."""
    setting = os.environ.get(WORKERS_ENV, "").strip()
    if setting:
        try:
            return max(1, int(setting))
        except ValueError as err:
            raise ValueError(f"{WORKERS_ENV}={setting!r}: expected a whole number") from err
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def map_chunks(
    fn: Callable[[Sequence[T]], R], items: Sequence[T], chunk_size: int = 1024
) -> Iterator[tuple[int, R]]:
    """Yields (items done so far, `fn(chunk)`) for consecutive chunks of `items`, in order.

    Small inputs run in this process; otherwise `fn` and the items must be picklable.
    """
    workers = min(available_workers(), len(items) // MIN_ITEMS_PER_WORKER)
    size = max(1, min(chunk_size, -(-len(items) // max(workers, 1))))
    starts = range(0, len(items), size)
    chunks = (items[start : start + size] for start in starts)
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        results = pool.map(fn, chunks) if pool else map(fn, chunks)
        for start, result in zip(starts, results, strict=True):
            yield min(start + size, len(items)), result
