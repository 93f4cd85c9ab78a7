"""Chunked work spread over worker processes or a Ray cluster, for the per-image loops.

Decoding files and hashing images are per-item Python loops; threads do not speed them up, worker
processes do. One executor runs them all: `LocalProcesses` on this machine (the default), or
`RayTasks` on a Ray cluster (`-S executor=ray`). Work is cut by the data, never by the cluster,
and results come back in input order, so the output is identical for any executor and any worker
count. `DATAMATTERS_WORKERS` caps the local worker count (1 runs everything in this process).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

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


class Executor(Protocol):
    def chunk_size(self, items: int, preferred: int) -> int:
        """Items per chunk: changes how the work is spread, never its results."""
        ...

    def map(self, fn: Callable[[Sequence[T]], R], chunks: Iterable[Sequence[T]]) -> Iterator[R]:
        """`fn` of each chunk, yielded in the chunks' order."""
        ...


class LocalProcesses:
    """Worker processes on this machine, one per CPU unless `DATAMATTERS_WORKERS` says fewer.

    Workers are forked (a fork server cost the default quality stage 3-5 s per run here), so a
    process that also holds a Ray client's threads must not use it: a fork can copy a lock some
    other thread holds. A stage runs on one executor or the other, never both.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers

    def chunk_size(self, items: int, preferred: int) -> int:
        """At most `preferred`, and smaller when that gives every worker a chunk."""
        workers = min(self.workers or available_workers(), items // MIN_ITEMS_PER_WORKER)
        return max(1, min(preferred, -(-items // max(workers, 1))))

    def map(self, fn: Callable[[Sequence[T]], R], chunks: Iterable[Sequence[T]]) -> Iterator[R]:
        """Two chunks per worker in flight at most: chunks are read from `chunks` only as workers
        free up, so a lazy sequence (pixels read from disk a chunk at a time) stays lazy."""
        workers = self.workers or available_workers()
        if workers < 2:
            yield from map(fn, chunks)
            return
        with ProcessPoolExecutor(workers) as pool:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.submit(fn, chunk))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


class RayTasks:
    """One Ray task per chunk on the cluster at `address`; at most `in_flight` chunks at a time.

    The `datamatters` package travels with the tasks (Ray's `py_modules`), so a node needs only
    Python and the third-party packages. Chunks that name files (ingest's decoding) need those
    paths readable on every node: the workspace on a shared filesystem.
    """

    def __init__(self, address: str | None = "auto", in_flight: int = 64) -> None:
        self.address = address
        self.in_flight = max(1, int(in_flight))

    def chunk_size(self, items: int, preferred: int) -> int:
        return preferred

    def map(self, fn: Callable[[Sequence[T]], R], chunks: Iterable[Sequence[T]]) -> Iterator[R]:
        import ray

        if not ray.is_initialized():
            package = str(Path(__file__).resolve().parent)
            ray.init(
                address=self.address,
                runtime_env={"py_modules": [package]},
                log_to_driver=False,
                logging_level="WARNING",
            )
        task = ray.remote(_apply)
        pending: deque = deque()
        for chunk in chunks:
            pending.append(task.remote(fn, chunk))
            if len(pending) >= self.in_flight:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())


def _apply(fn: Callable[[Sequence[T]], R], chunk: Sequence[T]) -> R:
    """A Ray task: `ray.remote` takes only plain functions, and `fn` is often a `partial`."""
    return fn(chunk)


_executor: Executor = LocalProcesses()


@contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Run every `map_chunks` inside the block on `executor` (a stage's `executor` params)."""
    global _executor
    previous, _executor = _executor, executor
    try:
        yield executor
    finally:
        _executor = previous


def map_chunks(
    fn: Callable[[Sequence[T]], R], items: Sequence[T], chunk_size: int = 1024
) -> Iterator[tuple[int, R]]:
    """Yields (items done so far, `fn(chunk)`) for consecutive chunks of `items`, in order.

    Inputs too small to be worth a worker run in this process; otherwise `fn` and the items must
    be picklable, and the executor set by `use_executor` runs the chunks.
    """
    small = len(items) < 2 * MIN_ITEMS_PER_WORKER
    chunk_size = _executor.chunk_size(len(items), chunk_size)
    starts = range(0, len(items), chunk_size)
    chunks = (items[start : start + chunk_size] for start in starts)
    results = map(fn, chunks) if small else _executor.map(fn, chunks)
    for start, result in zip(starts, results, strict=True):
        yield min(start + chunk_size, len(items)), result
