"""What a change to a few images costs DVC: shards that changed, and files `dvc push` sends.

    python benchmarks/shard_reuse.py [--n 40000] [--change 5] [--seed 0]

Writes `--n` distinct 64×64 colour scenes (`scenes.write_scenes`) as a folder, runs `ingest` on
them in a scratch project (`data=folder data.channels=3 data.image_size=64`) and pushes its
outputs to a local DVC remote; then brightens `--change` of the files (a seeded choice),
runs `ingest` again and pushes again. Reports, for the train pool and the reference split, how
many of the pixel shards changed, and how many files and bytes the second push sent against the
first. Pixels live in shards (`data/contract.py`), so an edited image rewrites its own shard,
unless its new pixels move it to the other side of the split (a hash of the pixels decides the
side), which shifts every later row of both sides by one.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from project_runs import run, scratch_project
from scenes import write_scenes

PUSHED = re.compile(r"(\d+) files? pushed")
OUTPUTS = ("raw", "raw_reference")


def shard_digests(project: Path) -> dict[str, dict[str, str]]:
    """md5 of each pixel shard of ingest's two outputs, by output and shard name."""
    return {
        output: {
            shard.name: hashlib.md5(shard.read_bytes()).hexdigest()
            for shard in sorted((project / "data" / output / "images").iterdir())
        }
        for output in OUTPUTS
    }


def sides(project: Path) -> dict[str, str]:
    """The split each source file landed on."""
    tables = [pd.read_parquet(project / "data" / out / "manifest.parquet") for out in OUTPUTS]
    both = pd.concat(tables, ignore_index=True)
    return dict(zip(both["source"], both["split"], strict=True))


def remote_bytes(remote: Path) -> int:
    return sum(path.stat().st_size for path in remote.rglob("*") if path.is_file())


def pushed(project: Path) -> int:
    _, output = run(["dvc", "push", "ingest"], project)
    match = PUSHED.search(output)
    return int(match.group(1)) if match else 0


def brighten(files: list[Path]) -> None:
    """Re-save each file 12 grey levels brighter: new pixels, the same file name and size."""
    for path in files:
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        Image.fromarray(np.clip(pixels + 12, 0, 255).astype(np.uint8)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--change", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="datamatters-shards-"))
    truth = write_scenes(work / "images", args.n, 64, 0.0, args.seed)
    folder = [f"data.path={work / 'images'}", "data.channels=3", "data.image_size=64"]
    project = scratch_project(work / "project", ["data=folder", *folder])
    remote = work / "remote"
    run(["dvc", "remote", "add", "-d", "bench", str(remote)], project)

    run(["dvc", "repro", "ingest"], project)
    before, first_files = shard_digests(project), pushed(project)
    first_bytes, first_sides = remote_bytes(remote), sides(project)
    rng = np.random.default_rng(args.seed)
    changed = [truth["path"].iloc[i] for i in rng.choice(len(truth), args.change, replace=False)]
    brighten([Path(path) for path in changed])
    run(["dvc", "repro", "ingest"], project)
    after, second_files = shard_digests(project), pushed(project)
    second_bytes, second_sides = remote_bytes(remote) - first_bytes, sides(project)
    moved = sum(first_sides[path] != second_sides[path] for path in changed)
    print(f"{moved} of the {args.change} changed images moved to the other side of the split")

    for output in before:
        old, new = before[output], after[output]
        changed = sum(old.get(name) != digest for name, digest in new.items())
        print(f"{output:<14} {changed} of {len(new)} shards changed (was {len(old)} shards)")
    print(f"first push:  {first_files} files, {first_bytes / 2**20:.1f} MiB")
    print(
        f"after changing {args.change} of {args.n} images: {second_files} files, "
        f"{second_bytes / 2**20:.1f} MiB ({second_bytes / first_bytes:.1%} of the first push)"
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
