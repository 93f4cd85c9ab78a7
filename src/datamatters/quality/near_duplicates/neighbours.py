"""Candidate pairs for the near-duplicate checks: each image's k most similar others, O(N·k).

Every pair within the hash radius is not a usable candidate set: perceptual hashes of one domain
cluster, so on MNIST-5k 0.79% of all pairs fall within 10 bits, and those pairs grow as N². Here
each image contributes at most `k` candidates per view, its nearest neighbours by the correlation
of its blurred view (the confirmation's own prefilter, at half resolution), and only those the
hash radius also admits go on to be registered. Ranked by that correlation a copy usually comes
first, but in a dense class (MNIST's "1"s) a copy whose pose moved can rank past 32nd: with
k = 32 the quality ground truth lost one near-copy pair the all-pairs search had confirmed, with
the default k = 64 none (`benchmarks/split_ground_truth.py`, `near_duplicate_scaling.py`).

faiss finds the neighbours: an exact inner-product search up to `EXACT_UP_TO` images, a
graph index (HNSW) beyond, built on one thread so the graph, and so the candidates, are the same
on every run.
"""

from __future__ import annotations

import cv2
import faiss
import numpy as np
from scipy import ndimage

from datamatters.quality.near_duplicates.registration import (
    MARGIN,
    PREFILTER_SIGMA,
    standardised,
)

EMBED_SIDE = 13  # the blurred pose's inner 26×26 pixels, halved: 169 numbers per image
EXACT_UP_TO = 20_000  # images searched exhaustively; a graph index (HNSW) beyond
GRAPH_LINKS = 16  # HNSW neighbours per node
GRAPH_BUILD_SEARCH = 40  # HNSW candidate list while building
CHUNK = 8192  # images embedded at once


def embeddings(views: np.ndarray) -> np.ndarray:
    """float32 N×169 rows of zero mean and unit norm (inner products are correlations) of uint8
    N×S×S images, one view of each."""
    out = np.empty((len(views), EMBED_SIDE * EMBED_SIDE), dtype=np.float32)
    for s in range(0, len(views), CHUNK):
        blurred = ndimage.gaussian_filter(
            views[s : s + CHUNK].astype(np.float32), (0, PREFILTER_SIGMA, PREFILTER_SIGMA)
        )[:, MARGIN:-MARGIN, MARGIN:-MARGIN]
        small = [
            cv2.resize(image, (EMBED_SIDE, EMBED_SIDE), interpolation=cv2.INTER_AREA)
            for image in blurred
        ]
        out[s : s + CHUNK] = standardised(np.stack(small))
    return out


def neighbour_pairs(embedded: np.ndarray, k: int, across: int | None = None) -> np.ndarray:
    """Sorted unique int64 pairs (i, j), i < j: each row and its `k` nearest other rows.

    With `across`, rows before it form one set and the rest another, and each row of the second
    set is paired with its `k` nearest rows of the first: a search between two splits.
    """
    n = len(embedded)
    if across is None:
        if n < 2:
            return np.empty((0, 2), dtype=np.int64)
        found = _search(embedded, embedded, min(k + 1, n))
        queries = np.repeat(np.arange(n), found.shape[1])
    else:
        if across == 0 or across == n:
            return np.empty((0, 2), dtype=np.int64)
        found = _search(embedded[:across], embedded[across:], min(k, across))
        queries = np.repeat(np.arange(across, n), found.shape[1])
    members = found.ravel()
    keep = (members >= 0) & (members != queries)
    pairs = np.sort(np.stack([queries[keep], members[keep]], axis=1), axis=1)
    return np.unique(pairs, axis=0).astype(np.int64)


def _search(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices into `base` of each query's `k` nearest rows by inner product (-1: none found)."""
    dim = base.shape[1]
    if len(base) <= EXACT_UP_TO:
        index = faiss.IndexFlatIP(dim)
        index.add(base)
    else:
        index = faiss.IndexHNSWFlat(dim, GRAPH_LINKS, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = GRAPH_BUILD_SEARCH
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # a graph built in parallel depends on thread timing
        try:
            index.add(base)
        finally:
            faiss.omp_set_num_threads(threads)
        index.hnsw.efSearch = 2 * k
    _, found = index.search(np.ascontiguousarray(queries), k)
    return found
