"""The near-duplicate search over a batch of images, and the groups its confirmed pairs form."""

from __future__ import annotations

from collections.abc import Callable
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

    pairs: np.ndarray  # int64 (k, 2), i < j (or base row, row), confirmed near-duplicates
    best_similarity: np.ndarray | None  # float (n,), NaN where no candidate was registered
    candidates: int  # neighbour pairs within max_distance, before confirmation


def find_near_duplicates(
    views: np.ndarray,
    codes: np.ndarray,
    max_distance: int,
    min_similarity: float | None,
    max_neighbours: int,
    rows: np.ndarray | None = None,
    base: tuple[np.ndarray, np.ndarray] | None = None,
) -> NearDuplicateMatches:
    """Search and (unless `min_similarity` is None) confirm, over the images' views and their
    hashes (`canonical_hash.view_hashes`: N×V×S×S and N×V), which the caller computes once for
    every search; over `rows` of them only, when given (the results then number those rows).

    In each view, candidates are each image's `max_neighbours` nearest others (`neighbours`)
    whose hashes are within `max_distance` bits, and they are confirmed in that view; a pair is a
    near-duplicate when either view confirms it. With `base` (another set's views and hashes),
    each image is searched among the base images only, and pairs are (base row, row): a search
    between two splits. Neither set is copied: each view is read in chunks where it lies.
    """
    rows = np.arange(len(codes)) if rows is None else np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return NearDuplicateMatches(np.empty((0, 2), np.int64), np.empty(0), 0)
    codes = codes[rows]
    base_views, base_codes = (views, codes) if base is None else base
    found, scores = [], []
    for view in range(codes.shape[1]):
        close = _within_radius(base_codes[:, view], codes[:, view], max_distance)
        embedded = embeddings(views[:, view], rows)
        base_embedded = None if base is None else embeddings(base_views[:, view])
        pairs = neighbour_pairs(embedded, max_neighbours, base_embedded, admit=close)
        found.append(pairs)
        if min_similarity is None:
            continue
        if base is None:
            scores.append(pair_similarity(views[:, view], rows[pairs]))
        else:
            across = np.stack([pairs[:, 0], rows[pairs[:, 1]]], axis=1)
            scores.append(pair_similarity(base_views[:, view], across, views[:, view]))
    candidates, which = np.unique(np.concatenate(found), axis=0, return_inverse=True)
    if min_similarity is None:
        return NearDuplicateMatches(candidates, None, len(candidates))
    similarity = np.full(len(candidates), np.nan)
    np.fmax.at(similarity, which.ravel(), np.concatenate(scores))
    best = np.full(len(rows), np.nan)
    scored = np.isfinite(similarity)
    for column in (0, 1) if base is None else (1,):
        np.fmax.at(best, candidates[scored, column], similarity[scored])
    confirmed = candidates[scored & (similarity >= min_similarity)]
    return NearDuplicateMatches(confirmed, best, len(candidates))


def _within_radius(
    base_codes: np.ndarray, codes: np.ndarray, max_distance: int
) -> Callable[[np.ndarray], np.ndarray]:
    """The hash radius as a test of (base row, row) pairs, applied to each block of neighbours."""

    def admit(pairs: np.ndarray) -> np.ndarray:
        return popcount(base_codes[pairs[:, 0]] ^ codes[pairs[:, 1]]) <= max_distance

    return admit


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
