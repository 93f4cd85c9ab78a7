"""Confirming near-duplicate candidates: the batched Lucas-Kanade registration against libraries.

    python benchmarks/near_duplicate_registration.py [--copies 400]

MNIST-5k's train pool plus near-copies of some of its digits (moved up to 2 px, turned up to 4°,
JPEG re-encoded at quality 70-90, as the tests make them) are posed, hashed and searched as the
near-duplicate check does (each image's 64 nearest, within the hash radius). Every candidate
pair that passes the check's blurred prefilter is then registered and scored by the check's
gradient correlation, by each method:

- the check's own batched inverse-compositional Lucas-Kanade (`registration.pair_similarity`);
- OpenCV's `cv2.findTransformECC` (rigid, MOTION_EUCLIDEAN), one pair at a time;
- scikit-image's `phase_cross_correlation` (translation only), one pair at a time.

Reported per method: seconds for the registered pairs, copies confirmed at the default
`min_similarity` (recall over the planted copies) and other pairs confirmed (false matches).
"""

from __future__ import annotations

import argparse
import io
import time

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.quality.features import grey
from datamatters.quality.near_duplicates.canonical_hash import popcount, view_hashes
from datamatters.quality.near_duplicates.neighbours import embeddings, neighbour_pairs
from datamatters.quality.near_duplicates.registration import (
    PREFILTER_SIGMA,
    gradient_correlation,
    pair_similarity,
)

# the check's defaults (conf/quality/default.yaml)
MAX_DISTANCE, MIN_SIMILARITY, MAX_NEIGHBOURS = 10, 0.975, 64


def near_copy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`image` (uint8 32×32×1) moved, turned and JPEG re-encoded."""
    matrix = cv2.getRotationMatrix2D((15.5, 15.5), rng.uniform(-4, 4), 1.0)
    matrix[:, 2] += rng.uniform(-2, 2, size=2)
    moved = cv2.warpAffine(image, matrix, (32, 32), borderMode=cv2.BORDER_REFLECT_101)
    buffer = io.BytesIO()
    Image.fromarray(moved).save(buffer, format="JPEG", quality=int(rng.integers(70, 91)))
    return np.asarray(Image.open(buffer)).reshape(image.shape)


def ecc_similarity(canonical: np.ndarray, pairs: np.ndarray, iterations: int) -> np.ndarray:
    """Each pair's second image aligned to its first by OpenCV's ECC, then correlated."""
    raw, blurred = _raw_and_blurred(canonical)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-4)
    aligned = np.empty((len(pairs), *raw.shape[1:]), dtype=np.float32)
    size = raw.shape[2], raw.shape[1]
    for k, (a, b) in enumerate(pairs):
        warp = np.eye(2, 3, dtype=np.float32)
        try:
            _, warp = cv2.findTransformECC(
                blurred[a], blurred[b], warp, cv2.MOTION_EUCLIDEAN, criteria, None, 1
            )
        except cv2.error:
            warp = np.eye(2, 3, dtype=np.float32)  # did not converge: compared unaligned
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        aligned[k] = cv2.warpAffine(raw[b], warp, size, flags=flags)
    return gradient_correlation(raw[pairs[:, 0]], aligned)


def phase_similarity(canonical: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Each pair's second image shifted onto its first by phase correlation, then correlated."""
    raw, blurred = _raw_and_blurred(canonical)
    aligned = np.empty((len(pairs), *raw.shape[1:]), dtype=np.float32)
    for k, (a, b) in enumerate(pairs):
        shift = phase_cross_correlation(blurred[a], blurred[b], upsample_factor=10)[0]
        aligned[k] = ndimage.shift(raw[b], shift, order=1, mode="constant")
    return gradient_correlation(raw[pairs[:, 0]], aligned)


def _raw_and_blurred(canonical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    raw = canonical.astype(np.float32)
    return raw, ndimage.gaussian_filter(raw, (0, PREFILTER_SIGMA, PREFILTER_SIGMA))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=400)
    args = parser.parse_args()

    pool = ingest(list(Mnist5kSource().items()), 32, 1, 0.2, 0).train
    rng = np.random.default_rng(0)
    sources = rng.choice(len(pool.images), args.copies, replace=False)
    copies = np.stack([near_copy(pool.images[row], rng) for row in sources])
    views, codes = view_hashes(grey(np.concatenate([pool.images, copies])))
    canonical, codes = views[:, 0], codes[:, 0]  # the canonical pose, the view copies move in
    candidates = neighbour_pairs(embeddings(canonical), MAX_NEIGHBOURS)
    candidates = candidates[
        popcount(codes[candidates[:, 0]] ^ codes[candidates[:, 1]]) <= MAX_DISTANCE
    ]
    pairs = candidates[np.isfinite(pair_similarity(canonical, candidates))]
    n = len(pool.images)
    is_copy = (pairs[:, 1] >= n) & (pairs[:, 0] == sources[np.maximum(pairs[:, 1] - n, 0)])
    print(
        f"{n} digits + {args.copies} near-copies: {len(candidates)} candidate pairs, "
        f"{len(pairs)} past the prefilter ({int(is_copy.sum())} of them copy pairs)"
    )
    methods = {
        "batched Lucas-Kanade (the check's)": lambda: pair_similarity(canonical, pairs),
        "cv2.findTransformECC, 4 iterations": lambda: ecc_similarity(canonical, pairs, 4),
        "cv2.findTransformECC, 50 iterations": lambda: ecc_similarity(canonical, pairs, 50),
        "skimage phase_cross_correlation": lambda: phase_similarity(canonical, pairs),
    }
    print(f"{'method':<38} {'seconds':>8} {'copies confirmed':>17} {'others confirmed':>17}")
    for name, similarity in methods.items():
        started = time.perf_counter()
        confirmed = similarity() >= MIN_SIMILARITY
        seconds = time.perf_counter() - started
        copies_found = int((confirmed & is_copy).sum())
        print(
            f"{name:<38} {seconds:>8.3f} {copies_found:>7} of {args.copies:<6} "
            f"{int((confirmed & ~is_copy).sum()):>17}"
        )


if __name__ == "__main__":
    main()
