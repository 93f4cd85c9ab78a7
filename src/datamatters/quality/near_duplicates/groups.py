"""The near-duplicate search over a batch of images, and the groups its confirmed pairs form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from datamatters.quality.near_duplicates.canonical_hash import popcount
from datamatters.quality.near_duplicates.neighbours import embeddings, neighbour_pairs
from datamatters.quality.near_duplicates.registration import pair_similarity


@dataclass
class NearDuplicateMatches:
    """Within one batch of images: confirmed pairs and each image's best candidate similarity."""

    pairs: np.ndarray  # int64 (k, 2), i < j, confirmed near-duplicates
    best_similarity: np.ndarray | None  # float (n,), NaN where no candidate was registered
    candidates: int  # neighbour pairs within max_distance, before confirmation


def find_near_duplicates(
    views: np.ndarray,
    codes: np.ndarray,
    max_distance: int,
    min_similarity: float | None,
    max_neighbours: int,
    across: int | None = None,
) -> NearDuplicateMatches:
    """Search and (unless `min_similarity` is None) confirm, over each image's views and their
    hashes (`canonical_hash.view_hashes`: N×V×S×S and N×V), which the caller computes once for
    every search.

    In each view, candidates are each image's `max_neighbours` nearest others (`neighbours`)
    whose hashes are within `max_distance` bits, and they are confirmed in that view; a pair is a
    near-duplicate when either view confirms it. With `across`, the batch is two sets (rows
    before `across`, and the rest) and only pairs with one image in each are searched: a search
    between two splits.
    """
    if not len(codes):
        return NearDuplicateMatches(np.empty((0, 2), np.int64), np.empty(0), 0)
    found, scores = [], []
    for view in range(codes.shape[1]):
        pairs = neighbour_pairs(embeddings(views[:, view]), max_neighbours, across)
        pairs = pairs[popcount(codes[pairs[:, 0], view] ^ codes[pairs[:, 1], view]) <= max_distance]
        found.append(pairs)
        if min_similarity is not None:
            scores.append(pair_similarity(views[:, view], pairs))
    candidates, which = np.unique(np.concatenate(found), axis=0, return_inverse=True)
    if min_similarity is None:
        return NearDuplicateMatches(candidates, None, len(candidates))
    similarity = np.full(len(candidates), np.nan)
    np.fmax.at(similarity, which.ravel(), np.concatenate(scores))
    best = np.full(len(codes), np.nan)
    scored = np.isfinite(similarity)
    for column in (0, 1):
        np.fmax.at(best, candidates[scored, column], similarity[scored])
    confirmed = candidates[scored & (similarity >= min_similarity)]
    return NearDuplicateMatches(confirmed, best, len(candidates))


def group_roots(n: int, pairs: np.ndarray) -> np.ndarray:
    """Each row's group root, the smallest row index in its group; groups are connected `pairs`.

    The smallest index makes the kept row the first of its group in manifest order, whatever
    order the pairs were found in.
    """
    if n == 0:
        return np.empty(0, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    edges = np.ones(len(pairs), dtype=np.int8)
    graph = coo_matrix((edges, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, smallest = np.unique(labels, return_index=True)  # first occurrence: the smallest row
    return smallest[labels].astype(np.int64)
