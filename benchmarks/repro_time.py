"""Wall time of the default pipeline on a fresh clone: every stage, a no-op, a training change.

    python benchmarks/repro_time.py [--repo .] [--keep]

Clones the committed HEAD into a temporary directory (so nothing cached here helps), runs the
pipeline with the default params.yaml and prints the times and the metrics it produced.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(cwd / "src"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout + done.stderr


def stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="datamatters-bench-"))
    clone = work / "project"
    subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)

    # --force: a fresh clone already has the git-tracked metrics files, and DVC rightly skips a
    # stage whose deterministic inputs and outputs match dvc.lock; forcing times every stage.
    full, output = run(["dvc", "repro", "--force"], clone)
    print(f"dvc repro --force (fresh clone): {full:.1f} s, stages: {', '.join(stages(output))}")
    for line in output.splitlines():
        if re.match(r"\[\w+\] (done in|.*images|accuracy|fid_judge)", line):
            print("   ", line)
    noop, output = run(["dvc", "repro"], clone)
    print(f"dvc repro (no-op): {noop:.1f} s, stages: {', '.join(stages(output)) or 'none'}")

    params_file = clone / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    optimizer = next(v for k, v in params["model"].items() if k.endswith("optimizer"))
    optimizer["lr"] = optimizer["lr"] / 2
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    changed, output = run(["dvc", "repro"], clone)
    print(
        f"dvc repro (training param changed): {changed:.1f} s, stages: {', '.join(stages(output))}"
    )

    for name in ("judge", "evaluate"):
        print(
            f"metrics/{name}.json:",
            json.dumps(json.loads((clone / "metrics" / f"{name}.json").read_text())),
        )
    if args.keep:
        print("clone kept at", clone)
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
