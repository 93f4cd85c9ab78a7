"""The near-duplicate search as N grows, on distinct colour scenes, and what its cap gives up.

    python benchmarks/near_duplicate_scaling.py [--sizes 10000 40000 160000] [--k 64]
    python benchmarks/near_duplicate_scaling.py --agreement-only

Growth: `scenes.scene` draws N distinct 64×64 colour scenes, 1% of them replaced by re-encoded
near-copies of others (`scenes.reencode`: JPEG 75-95, brightness ±8, contrast ±5%). Each N runs in
its own process (so its peak resident memory is its own) through the check's steps: both views
and their hashes, then in each view each image's `--k` nearest, kept within the hash radius, and
confirmed. Each line gives the seconds of both steps, the candidate pairs, the planted copies
confirmed and the peak memory; then the log-log slope of the total against N (1 = linear, 2 = all
pairs).

Agreement: on MNIST-5k's train pool with 5% injected near-copies (the most clustered data this
project has: 0.79% of all digit pairs are within 10 bits), the pairs confirmed from every pair of
canonical poses within the hash radius (the search the check ran before it was capped, with one
view) against those the check confirms now, for k = 16, 32, 64.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scenes import reencode, scene

from datamatters.quality.features import grey
from datamatters.quality.near_duplicates.canonical_hash import popcount, view_hashes
from datamatters.quality.near_duplicates.groups import find_near_duplicates
from datamatters.quality.near_duplicates.registration import pair_similarity

RADIUS, MIN_SIMILARITY = 10, 0.975
CHUNK = 5000


def scene_poses(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Views and their hashes of n scenes (1% re-encoded copies), the planted pairs, and the
    seconds spent posing and hashing (not drawing)."""
    rng = np.random.default_rng(seed)
    copies = n // 100
    sources = rng.choice(n - copies, copies, replace=False)
    poses, codes, seconds = [], [], 0.0
    for start in range(0, n, CHUNK):
        images = []
        for index in range(start, min(start + CHUNK, n)):
            if index < n - copies:
                images.append(scene(index, 64)[0])
            else:
                original = scene(int(sources[index - (n - copies)]), 64)[0]
                images.append(_decoded(reencode(original, rng)))
        started = time.perf_counter()
        pose, code = view_hashes(grey(np.stack(images)))
        seconds += time.perf_counter() - started
        poses.append(pose)
        codes.append(code)
    planted = np.stack([sources, np.arange(n - copies, n)], axis=1)
    return np.concatenate(poses), np.concatenate(codes), planted, seconds


def _decoded(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def one_size(n: int, k: int) -> dict:
    """The check's steps on n scenes, timed; run in a process of its own."""
    views, codes, planted, hash_seconds = scene_poses(n)
    started = time.perf_counter()
    matches = find_near_duplicates(views, codes, RADIUS, MIN_SIMILARITY, k)
    search_seconds = time.perf_counter() - started
    confirmed = {tuple(p) for p in matches.pairs.tolist()}
    return {
        "n": n,
        "seconds": {
            "views+hashes": round(hash_seconds, 2),
            "search+confirm": round(search_seconds, 2),
        },
        "total": round(hash_seconds + search_seconds, 2),
        "candidates": matches.candidates,
        "confirmed": len(confirmed),
        "planted": len(planted),
        "planted_found": sum(tuple(sorted(p)) in confirmed for p in planted.tolist()),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def all_pairs_within(codes: np.ndarray, radius: int) -> np.ndarray:
    """Every pair (i < j) of hashes within `radius` bits, by brute force in row blocks."""
    found = []
    for start in range(0, len(codes), 1024):
        block = popcount(codes[start : start + 1024, None] ^ codes[None, :])
        i, j = np.nonzero(block <= radius)
        keep = start + i < j
        found.append(np.stack([start + i[keep], j[keep]], axis=1))
    return np.concatenate(found).astype(np.int64)


def agreement(ks: list[int]) -> None:
    from datamatters.data.corrupt import inject
    from datamatters.data.ingest import ingest
    from datamatters.data.mnist5k import Mnist5kSource

    digits = ingest(list(Mnist5kSource().items()), 32, 1, 0.2, 0).train
    pool, _ = inject(digits, {"near_duplicate": 0.05}, seed=0)
    views, codes = view_hashes(grey(pool.images))
    every = all_pairs_within(codes[:, 0], RADIUS)  # the pose alone, as the check searched before
    similarity = pair_similarity(views[:, 0], every)
    reference = {tuple(p) for p in every[similarity >= MIN_SIMILARITY].tolist()}
    print(
        f"MNIST-5k train pool + 5% near-copies, {len(codes)} images: {len(every)} pairs within "
        f"{RADIUS} bits, {len(reference)} confirmed"
    )
    for k in ks:
        matches = find_near_duplicates(views, codes, RADIUS, MIN_SIMILARITY, k)
        capped = {tuple(p) for p in matches.pairs.tolist()}
        print(
            f"  k={k:>3}: {matches.candidates} candidates, {len(capped)} confirmed, "
            f"{len(reference - capped)} of the all-pairs search's missing, "
            f"{len(capped - reference)} new"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000, 160_000])
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--agreement-only", action="store_true")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.k)))
        return
    agreement([16, 32, 64])
    if args.agreement_only:
        return
    rows = []
    for n in args.sizes:
        command = [sys.executable, str(Path(__file__)), "--one", str(n), "--k", str(args.k)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    if len(rows) > 1:
        sizes = [row["n"] for row in rows]
        slope = np.polyfit(np.log(sizes), np.log([row["total"] for row in rows]), 1)[0]
        print(f"log-log slope of total seconds against N: {slope:.2f}")


if __name__ == "__main__":
    main()
