"""The near-duplicate search over a batch of images, and the groups its confirmed pairs form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamatters.quality.features import luminance
from datamatters.quality.near_duplicates.canonical_hash import canonical_hashes
from datamatters.quality.near_duplicates.hamming_search import hamming_pairs
from datamatters.quality.near_duplicates.registration import pair_similarity


@dataclass
class NearDuplicateMatches:
    """Within one batch of images: confirmed pairs and each image's best candidate similarity."""

    pairs: np.ndarray  # int64 (k, 2), i < j, confirmed near-duplicates
    best_similarity: np.ndarray | None  # float (n,), NaN where no candidate was registered
    candidates: int  # pairs within max_distance before confirmation


def find_near_duplicates(
    images: np.ndarray,
    max_distance: int,
    min_similarity: float | None,
    method: str = "phash",
    across: int | None = None,
) -> NearDuplicateMatches:
    """Hash, search and (unless `min_similarity` is None) confirm, over a uint8 N×H×W×C batch.

    With `across`, the batch is two sets (rows before `across`, and the rest) and only pairs with
    one image in each are kept, before any is confirmed: a search between two splits.
    """
    if not len(images):
        return NearDuplicateMatches(np.empty((0, 2), np.int64), np.empty(0), 0)
    canonical, codes = canonical_hashes(luminance(images), method)
    candidates = hamming_pairs(codes, max_distance)
    if across is not None:
        candidates = candidates[(candidates[:, 0] < across) & (candidates[:, 1] >= across)]
    if min_similarity is None:
        return NearDuplicateMatches(candidates, None, len(candidates))
    similarity = pair_similarity(canonical, candidates)
    best = np.full(len(images), np.nan)
    scored = np.isfinite(similarity)
    for column in (0, 1):
        np.fmax.at(best, candidates[scored, column], similarity[scored])
    confirmed = candidates[scored & (similarity >= min_similarity)]
    return NearDuplicateMatches(confirmed, best, len(candidates))


def group_roots(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over `pairs`: each row's group root, the smallest row index in its group."""
    parent = np.arange(n)

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:  # path compression
            parent[a], a = root, parent[a]
        return root

    for i, j in pairs:
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(a) for a in range(n)], dtype=np.int64)
