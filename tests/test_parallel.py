"""Worker processes and Ray clusters change speed, never results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datamatters.data.mnist5k import Mnist5kSource
from datamatters.parallel import (
    WORKERS_ENV,
    available_workers,
    map_chunks,
)
from ray_run import ingest_and_match


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


def test_ingest_and_near_duplicates_same_with_two_workers(monkeypatch, mnist_items):
    monkeypatch.setenv(WORKERS_ENV, "1")
    one, one_matches = ingest_and_match(mnist_items)
    monkeypatch.setenv(WORKERS_ENV, "2")
    two, two_matches = ingest_and_match(mnist_items)
    assert len(one.manifest) >= 2 * 256  # enough rows for two workers to start
    assert np.array_equal(one.images, two.images)
    assert one.manifest.equals(two.manifest)
    assert np.array_equal(one_matches.pairs, two_matches.pairs)
    assert one_matches.candidates == two_matches.candidates > 0


RAY_RUN = Path(__file__).with_name("ray_run.py")


@pytest.mark.slow
def test_ray_executor_on_two_nodes_gives_the_local_bytes(monkeypatch, mnist_items, tmp_path):
    """The cluster and its driver run in a child process: a process that holds a Ray client's
    threads must not fork, and this one forks its local workers."""
    monkeypatch.setenv(WORKERS_ENV, "2")
    local, local_matches = ingest_and_match(mnist_items)
    done = subprocess.run(
        [sys.executable, str(RAY_RUN), str(tmp_path), str(len(mnist_items))],
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    remote = np.load(tmp_path / "ray.npz", allow_pickle=False)
    assert remote["nodes"] == 2, "the chunks ran on both nodes"
    assert np.array_equal(local.images, remote["images"])
    assert local.manifest.equals(pd.read_parquet(tmp_path / "manifest.parquet"))
    assert np.array_equal(local_matches.pairs, remote["pairs"])
