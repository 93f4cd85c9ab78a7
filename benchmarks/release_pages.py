"""What a scattered read of sharded pixels leaves resident, and what releasing it costs.

    python benchmarks/release_pages.py [--n 128000] [--rows 20000]

The judge's and the label audit's data loaders read one row at a time in shuffled order and drop
its memory-mapped pages afterwards, so that an epoch over a set larger than memory stays small.
This writes `--n` random 64×64 colour images as the pipeline's 32 MiB shards, then reads
`--rows` random rows of a selection of half of them (a `RowsOf`, as the judge's reference is),
each followed by one of three releases, each way in a fresh process:

- `row`: only the row's own bytes (`mapped.release_rows(images, row, row + 1)`);
- `all shards`: every page of every shard (`release_rows(images, 0, len(images))`);
- `its shard`: every page of the shard holding the row (`mapped.release_scattered`).

It prints the resident memory the reads left behind (from /proc/self/statm, every page of the
set released before the first read) and the time per row, read and release together. Before
each way the shards are dropped from the page cache (`posix_fadvise`), so the reads come from
disk through the kernel's readahead, as a later stage's reads of an earlier stage's output do:
how much one read maps then depends on the page cache's folios, and so on the kernel.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from datamatters.data.mapped import (
    ShardedImages,
    release_rows,
    release_scattered,
    rows_of,
    rows_per_chunk,
)

SHARD_BYTES = 32 * 2**20
RELEASES = {
    "row": lambda shards, row: release_rows(shards, row, row + 1),
    "all shards": lambda shards, row: release_rows(shards, 0, len(shards)),
    "its shard": lambda shards, row: release_scattered(shards, np.array([row])),
}


def resident_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def write_shards(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    per = rows_per_chunk(np.empty((1, 64, 64, 3), np.uint8), SHARD_BYTES)
    for number, start in enumerate(range(0, n, per)):
        shard = rng.integers(0, 256, (min(per, n - start), 64, 64, 3), dtype=np.uint8)
        np.save(folder / f"{number:05d}.npy", shard)


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (written back first), as if never read."""
    for path in paths:
        with path.open("rb+") as handle:
            os.fsync(handle.fileno())
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def measure(folder: Path, release: str, count: int) -> None:
    """One way of releasing, in this process: the row reads it prints a line for."""
    paths = sorted(folder.glob("*.npy"))
    evict(paths)
    shards = [np.load(path, mmap_mode="r") for path in paths]
    whole = ShardedImages(shards)
    selection = rows_of(whole, np.random.default_rng(2).permutation(len(whole))[: len(whole) // 2])
    order = np.random.default_rng(1).permutation(len(selection))[:count]
    release_rows(whole, 0, len(whole))
    before, started = resident_mib(), time.perf_counter()
    for row in order.tolist():
        np.array(selection[row])
        RELEASES[release](whole, int(selection.rows[row]))
    seconds = time.perf_counter() - started
    print(
        f"{release:>10}: {resident_mib() - before:7.1f} MiB left resident, "
        f"{seconds / count * 1e6:6.1f} µs a row ({len(shards)} shards)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=128_000)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--measure", choices=RELEASES, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.folder, args.measure, args.rows)
        return
    with tempfile.TemporaryDirectory(prefix="datamatters-release-", dir=".") as folder:
        write_shards(Path(folder), args.n)
        print(f"{args.n} images of 64×64×3, {args.rows} random rows of half of them")
        for release in RELEASES:
            command = [sys.executable, __file__, "--measure", release, "--folder", folder]
            subprocess.run([*command, "--rows", str(args.rows)], check=True)


if __name__ == "__main__":
    main()
