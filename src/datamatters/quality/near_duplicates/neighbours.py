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

from collections.abc import Callable

import cv2
import faiss
import numpy as np
from scipy import ndimage

from datamatters.data.mapped import release_map
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
QUERY_BLOCK = 16_384  # rows searched at once: a multiple of FAISS_QUERY_TILE
FAISS_QUERY_TILE = 4096  # queries faiss's exact search multiplies at once


def embeddings(views: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """float32 N×169 rows of zero mean and unit norm (inner products are correlations) of uint8
    N×S×S images, one view of each (of `rows` of them only, read a chunk at a time: the
    selection is never copied whole, and views on disk do not stay resident)."""
    rows = np.arange(len(views)) if rows is None else rows
    out = np.empty((len(rows), EMBED_SIDE * EMBED_SIDE), dtype=np.float32)
    for s in range(0, len(rows), CHUNK):
        blurred = ndimage.gaussian_filter(
            views[rows[s : s + CHUNK]].astype(np.float32), (0, PREFILTER_SIGMA, PREFILTER_SIGMA)
        )[:, MARGIN:-MARGIN, MARGIN:-MARGIN]
        small = [
            cv2.resize(image, (EMBED_SIDE, EMBED_SIDE), interpolation=cv2.INTER_AREA)
            for image in blurred
        ]
        out[s : s + CHUNK] = standardised(np.stack(small))
        release_map(views)
    return out


def neighbour_pairs(
    embedded: np.ndarray,
    k: int,
    base: np.ndarray | None = None,
    admit: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Sorted unique int64 pairs (i, j), i < j: each row and its `k` nearest other rows.

    With `base`, each row is paired with its `k` nearest rows of `base` instead, as (base row,
    row): a search between two splits. `admit` (pairs -> bool mask) keeps only the pairs it
    admits. The rows are searched `QUERY_BLOCK` at a time and each block's pairs are admitted
    before the next is searched, so the search's working memory is one block's k-NN table,
    not N·k pairs (a GB at 160,000 images): only admitted pairs are kept.
    """
    within = base is None
    base = embedded if within else base
    n = len(embedded)
    wanted = min(k + 1, n) if within else min(k, len(base))
    if n == 0 or wanted == 0 or (within and n < 2):
        return np.empty((0, 2), dtype=np.int64)
    index = _index(base, wanted)
    found = []
    for start, stop in query_blocks(n):
        members = index.search(np.ascontiguousarray(embedded[start:stop]), wanted)[1].ravel()
        queries = np.repeat(np.arange(start, stop), wanted)
        keep = (members >= 0) & (members != queries) if within else members >= 0
        pairs = np.stack([members[keep], queries[keep]], axis=1)
        pairs = np.sort(pairs, axis=1) if within else pairs
        if admit is not None:
            pairs = pairs[admit(pairs)]
        found.append(pairs)
    return np.unique(np.concatenate(found), axis=0).astype(np.int64)


def query_blocks(n: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) blocks of `QUERY_BLOCK` rows, the last one 4,096 rows or more
    (or all of them).

    faiss's exact search multiplies 4,096 queries at a time, and a block under 20 queries takes
    another code path: with blocks cut at multiples of 4,096, and none short, every query's
    inner products are computed as in one search of all rows, bit for bit, so the neighbours,
    and the decisions, do not depend on the blocks.
    """
    starts = list(range(0, n, QUERY_BLOCK))
    if len(starts) > 1 and n - starts[-1] < FAISS_QUERY_TILE:
        starts.pop()
    return list(zip(starts, [*starts[1:], n], strict=True))


def _index(base: np.ndarray, k: int) -> faiss.Index:
    """A faiss inner-product index of `base`: exact up to `EXACT_UP_TO` rows, a graph beyond."""
    dim = base.shape[1]
    if len(base) <= EXACT_UP_TO:
        index = faiss.IndexFlatIP(dim)
        index.add(base)
        return index
    index = faiss.IndexHNSWFlat(dim, GRAPH_LINKS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = GRAPH_BUILD_SEARCH
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # a graph built in parallel depends on thread timing
    try:
        index.add(base)
    finally:
        faiss.omp_set_num_threads(threads)
    index.hnsw.efSearch = 2 * k
    return index
