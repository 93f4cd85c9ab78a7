"""The data stages on a two-node Ray cluster against local worker processes: same bytes? how long?

    python benchmarks/ray_executor.py [--n 10000] [--cpus-per-node 1]

Starts a real Ray cluster on this machine (a head and a second node, each its own raylet with
`--cpus-per-node` CPUs, as `ray start --head` and `ray start --address` make one), writes a folder
of `--n` colour scenes (`scenes.write_scenes`, 1% re-encoded copies) and, in one scratch copy of
this project, runs `dvc repro quality` with `executor=local`, then again with `executor=ray`
pointed at the cluster. Only the stages that read `executor` re-run (ingest, reference_quality,
quality; the judge's inputs are unchanged). Prints each stage's seconds under both executors and
whether every output DVC recorded has the same md5.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import yaml
from project_runs import run, scratch_project, stage_seconds
from scenes import write_scenes

from datamatters.config import write_params

STAGES = ("ingest", "reference_quality", "quality")


def outputs(project: Path) -> dict[str, str]:
    """Every output's md5 as `dvc.lock` recorded it."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    work = Path(tempfile.mkdtemp(prefix="datamatters-ray-"))
    write_scenes(work / "images", args.n, 64, 0.01, 0)
    data = ["data=folder", f"data.path={work / 'images'}", "data.channels=3", "data.image_size=64"]
    project = scratch_project(work / "project", [*data, "executor=local"])
    _, output = run(["dvc", "repro", "quality"], project)
    local_seconds, local_outputs = stage_seconds(output), outputs(project)

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": args.cpus_per_node, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=args.cpus_per_node)
    cluster.wait_for_nodes()
    try:
        overrides = [*data, "executor=ray", f"executor.address='{cluster.address}'"]
        write_params(project / "params.yaml", overrides, project / "conf")
        _, output = run(["dvc", "repro", "quality"], project)
        ray_seconds, ray_outputs = stage_seconds(output), outputs(project)
    finally:
        ray.shutdown()
        cluster.shutdown()

    print(f"{args.n} scenes; Ray: 2 nodes x {args.cpus_per_node} CPU; local: worker processes")
    print(f"{'stage':<18} {'local s':>8} {'ray s':>8}")
    for stage in STAGES:
        print(f"{stage:<18} {local_seconds.get(stage, 0):>8.1f} {ray_seconds.get(stage, 0):>8.1f}")
    same = {path: local_outputs[path] == ray_outputs.get(path) for path in local_outputs}
    print(f"outputs with the same md5: {sum(same.values())} of {len(same)}")
    for path, equal in same.items():
        print(f"  {path:<28} {'same' if equal else 'DIFFERENT'}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
