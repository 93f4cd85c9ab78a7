"""The Ray side of tests/test_parallel.py, in its own process, and the work both sides compare.

A real two-node cluster on this machine (a head and a worker node, each its own raylet with one
CPU, as `ray start --head` and `ray start --address` make one), and a driver that ingests and
matches through `RayTasks`.

Usage: python tests/ray_run.py OUT_DIR N_ITEMS (writes ray.npz and manifest.parquet there)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from datamatters.data.contract import StageData
from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.parallel import RayTasks, map_chunks, use_executor
from datamatters.quality.features import grey
from datamatters.quality.near_duplicates.canonical_hash import view_hashes
from datamatters.quality.near_duplicates.groups import NearDuplicateMatches, find_near_duplicates


def node_of(chunk: list[int]) -> list[str]:
    import ray

    time.sleep(0.5)  # long enough that a busy node's next chunk goes to the other node
    return [ray.get_runtime_context().get_node_id()] * len(chunk)


def ingest_and_match(items: list) -> tuple[StageData, NearDuplicateMatches]:
    """The train pool and its near-duplicate pairs: the work compared across executors."""
    pool = ingest(items, 32, 1, 0.2, 0).train
    views, codes = view_hashes(grey(pool.images))
    matches = find_near_duplicates(
        views, codes, max_distance=10, min_similarity=0.975, max_neighbours=32
    )
    return pool, matches


def main(out: str, n_items: int) -> None:
    import ray
    from ray.cluster_utils import Cluster

    items = list(Mnist5kSource().items())[:n_items]
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        with use_executor(RayTasks(address=cluster.address, in_flight=4)):
            nodes = {n for _, part in map_chunks(node_of, list(range(8 * 512)), 512) for n in part}
            pool, matches = ingest_and_match(items)
    finally:
        ray.shutdown()
        cluster.shutdown()
    np.savez(Path(out) / "ray.npz", nodes=len(nodes), images=pool.images, pairs=matches.pairs)
    pool.manifest.to_parquet(Path(out) / "manifest.parquet")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
