"""Growth of the near-duplicate search with the number of images, against faiss's multi-hash index.

    python benchmarks/near_duplicate_scaling.py [--max-n 100000] [--distance 6] [--threads N]

Random 64-bit perceptual hashes with planted near-copies (a few flipped bits) stand in for a
large dataset; the search is the one the quality stage runs. The log-log slope of time against
n is 1 for linear growth and 2 for an all-pairs comparison.

Each size is also searched with faiss's binary multi-hash index (`faiss.IndexBinaryMultiHash`,
a comparison only: `pip install faiss-cpu`), the library way to do the same multi-index search,
given the hand-written search's own choice of tables and flips; the pairs must be the same set.
faiss runs on every core unless `--threads` caps it, the hand-written search on one.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from datamatters.quality.near_duplicates.hamming_search import HASH_BITS, hamming_pairs


def hashes_with_planted_copies(n: int, distance: int, rng: np.random.Generator) -> np.ndarray:
    """n random hashes, the last 1% of which are copies of others with `distance` bits flipped."""
    hashes = rng.integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    hashes |= rng.integers(0, 2, size=n).astype(np.uint64)
    copies = max(1, n // 100)
    sources = rng.integers(0, n - copies, size=copies)
    for k, source in enumerate(sources):
        flips = rng.choice(64, size=distance, replace=False)
        hashes[n - copies + k] = hashes[source] ^ np.uint64(sum(1 << int(b) for b in flips))
    return hashes


def multi_hash_tables(n: int, radius: int) -> int:
    """Tables m for faiss (each of 64 // m bits, probed within radius // m flips), chosen by the
    hand-written search's cost model: flip patterns × (n queries + n²/2^bits candidates)."""

    def cost(m: int) -> float:
        bits = HASH_BITS // m
        patterns = sum(math.comb(bits, k) for k in range(radius // m + 1))
        return m * patterns * (n + n * n / 2.0**bits)

    # at least two tables: one of 64 bits overflows faiss's bit mask
    return min(range(2, max(radius, 1) + 2), key=cost)


def faiss_pairs(hashes: np.ndarray, radius: int) -> np.ndarray:
    """Every pair within `radius` bits by `faiss.IndexBinaryMultiHash`, as sorted (i, j), i < j."""
    import faiss

    codes = np.ascontiguousarray(hashes.astype(np.uint64)).view(np.uint8).reshape(len(hashes), 8)
    tables = multi_hash_tables(len(codes), radius)
    index = faiss.IndexBinaryMultiHash(HASH_BITS, tables, HASH_BITS // tables)
    index.nflip = radius // tables
    index.add(codes)
    limits, _, found = index.range_search(codes, radius + 1)  # faiss keeps distances < radius
    queries = np.repeat(np.arange(len(codes), dtype=np.int64), np.diff(limits).astype(np.int64))
    keep = queries < found
    keys = np.unique(queries[keep] * len(codes) + found[keep])
    return np.stack([keys // len(codes), keys % len(codes)], axis=1)


def timed(search, hashes: np.ndarray, radius: int) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    pairs = search(hashes, radius)
    return time.perf_counter() - started, pairs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-n", type=int, default=100_000)
    parser.add_argument("--distance", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0, help="faiss's threads (0: all)")
    args = parser.parse_args()
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None and args.threads:
        faiss.omp_set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    sizes = [args.max_n // 2**k for k in range(4, -1, -1)]
    times = []
    header = ("n", 8), ("seconds", 9), ("faiss s", 9), ("tables", 6), ("pairs", 7), ("same", 5)
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'planted':>8}")
    for n in sizes:
        hashes = hashes_with_planted_copies(n, args.distance, rng)
        seconds, pairs = timed(hamming_pairs, hashes, args.distance)
        times.append(seconds)
        compared = "-", "-", "-"
        if faiss is not None:
            library_seconds, library = timed(faiss_pairs, hashes, args.distance)
            same = np.array_equal(pairs, library)
            tables = multi_hash_tables(n, args.distance)
            compared = f"{library_seconds:.2f}", tables, "yes" if same else "NO"
        print(
            f"{n:>8} {seconds:>9.2f} {compared[0]:>9} {compared[1]:>6} {len(pairs):>7} "
            f"{compared[2]:>5} {max(1, n // 100):>8}"
        )
    slope = np.polyfit(np.log(sizes), np.log(np.maximum(times, 1e-6)), 1)[0]
    print(f"log-log slope of time vs n: {slope:.2f} (1 = linear, 2 = quadratic)")
    all_pairs = math.comb(sizes[-1], 2)
    print(f"time at n={sizes[-1]}: {times[-1]:.1f} s ({all_pairs:,} pairs if compared all-to-all)")
    if faiss is None:
        print("faiss not installed: `pip install faiss-cpu` to compare with its multi-hash index")


if __name__ == "__main__":
    main()
