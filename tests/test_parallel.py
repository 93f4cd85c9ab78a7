"""Worker processes and Ray clusters change speed, never results."""

from __future__ import annotations

import numpy as np
import pytest

from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.parallel import (
    WORKERS_ENV,
    RayTasks,
    available_workers,
    map_chunks,
    use_executor,
)
from datamatters.quality.features import grey
from datamatters.quality.near_duplicates.canonical_hash import view_hashes
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
    views, codes = view_hashes(grey(pool.images))
    matches = find_near_duplicates(
        views, codes, max_distance=10, min_similarity=0.975, max_neighbours=32
    )
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


@pytest.fixture(scope="module")
def ray_cluster():
    """A real Ray cluster of two nodes on this machine (a head and a worker node, each its own
    raylet with one CPU), the way `ray start --head` and `ray start --address` make one."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.slow
def test_ray_executor_on_two_nodes_gives_the_local_bytes(monkeypatch, mnist_items, ray_cluster):
    def node_of(chunk: list[int]) -> list[str]:  # defined here: Ray ships it by value
        import time

        import ray

        time.sleep(0.5)  # long enough that a busy node's next chunk goes to the other node
        return [ray.get_runtime_context().get_node_id()] * len(chunk)

    monkeypatch.setenv(WORKERS_ENV, "2")
    local, local_matches = _ingest_and_match(mnist_items)
    with use_executor(RayTasks(address=ray_cluster.address, in_flight=4)):
        nodes = {n for _, part in map_chunks(node_of, list(range(8 * 512)), 512) for n in part}
        remote, remote_matches = _ingest_and_match(mnist_items)
    assert len(nodes) == 2, "the chunks ran on both nodes"
    assert np.array_equal(local.images, remote.images)
    assert local.manifest.equals(remote.manifest)
    assert np.array_equal(local_matches.pairs, remote_matches.pairs)
