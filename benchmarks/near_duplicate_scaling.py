"""Growth of the near-duplicate search with the number of images: must be clearly sub-quadratic.

    python benchmarks/near_duplicate_scaling.py [--max-n 100000] [--distance 6]

Random 64-bit perceptual hashes with planted near-copies (a few flipped bits) stand in for a
large dataset; the search is the one the quality stage runs. The log-log slope of time against
n is 1 for linear growth and 2 for an all-pairs comparison.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from datamatters.quality.near_duplicates.hamming_search import near_duplicate_pairs


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-n", type=int, default=100_000)
    parser.add_argument("--distance", type=int, default=6)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    sizes = [args.max_n // 2**k for k in range(4, -1, -1)]
    times = []
    print(f"{'n':>8} {'seconds':>9} {'pairs':>7} {'planted':>8}")
    for n in sizes:
        hashes = hashes_with_planted_copies(n, args.distance, rng)
        started = time.perf_counter()
        pairs = near_duplicate_pairs(hashes, args.distance)
        times.append(time.perf_counter() - started)
        print(f"{n:>8} {times[-1]:>9.2f} {len(pairs):>7} {max(1, n // 100):>8}")
    slope = np.polyfit(np.log(sizes), np.log(np.maximum(times, 1e-6)), 1)[0]
    print(f"log-log slope of time vs n: {slope:.2f} (1 = linear, 2 = quadratic)")
    all_pairs = math.comb(sizes[-1], 2)
    print(f"time at n={sizes[-1]}: {times[-1]:.1f} s ({all_pairs:,} pairs if compared all-to-all)")


if __name__ == "__main__":
    main()
