"""Worker processes change speed, never results."""

from __future__ import annotations

import numpy as np
import pytest

from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.parallel import WORKERS_ENV, available_workers, map_chunks
from datamatters.quality.features import luminance
from datamatters.quality.near_duplicates.canonical_hash import canonical_hashes
from datamatters.quality.near_duplicates.groups import find_near_duplicates


def _total(chunk: list[int]) -> int:
    return sum(chunk)


def test_map_chunks_keeps_order_and_counts_progress(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "2")
    items = list(range(2000))
    done, totals = zip(*map_chunks(_total, items, chunk_size=300), strict=True)
    assert sum(totals) == sum(items)
    assert list(done) == sorted(done) and done[-1] == len(items)


def test_workers_setting_is_validated(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "three")
    with pytest.raises(ValueError, match=WORKERS_ENV):
        available_workers()


@pytest.fixture(scope="module")
def mnist_items():
    return list(Mnist5kSource().items())[:700]


def _ingest_and_match(items):
    pool = ingest(items, 32, 1, 0.2, 0).train
    poses, codes = canonical_hashes(luminance(pool.images))
    matches = find_near_duplicates(poses, codes, max_distance=10, min_similarity=0.975)
    return pool, matches


def test_ingest_and_near_duplicates_same_with_two_workers(monkeypatch, mnist_items):
    monkeypatch.setenv(WORKERS_ENV, "1")
    one, one_matches = _ingest_and_match(mnist_items)
    monkeypatch.setenv(WORKERS_ENV, "2")
    two, two_matches = _ingest_and_match(mnist_items)
    assert len(one.manifest) >= 2 * 256  # enough rows for two workers to start
    assert np.array_equal(one.images, two.images)
    assert one.manifest.equals(two.manifest)
    assert np.array_equal(one_matches.pairs, two_matches.pairs)
    assert one_matches.candidates == two_matches.candidates > 0
