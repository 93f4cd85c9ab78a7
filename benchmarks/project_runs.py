"""Running the real pipeline in a scratch project, for the benchmarks that time or score it.

`run` starts a command there with this interpreter's tools first on PATH and the project's own
`src/` on the import path; `scratch_project` makes a fresh copy of this project's pipeline (code,
config, dvc.yaml, no data) with its own params.yaml.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from datamatters.config import write_params

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("conf", "stages", "src", "dvc.yaml", ".dvcignore", ".dvc/config")
DONE = re.compile(r"^\[(\w+)\] done in ([\d.]+) s$", re.M)  # every stage's last line
RAN = re.compile(r"Running stage '(\w+)'")


def project_env(cwd: Path) -> dict[str, str]:
    """The environment a command in the scratch project `cwd` runs with: this interpreter's tools
    first on PATH, the project's own `src/` on the import path."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(cwd / "src"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run(cmd: Sequence[str], cwd: Path) -> tuple[float, str]:
    """Seconds `cmd` took in `cwd` and what it printed; exits with its output if it failed."""
    started = time.perf_counter()
    done = subprocess.run(list(cmd), cwd=cwd, env=project_env(cwd), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout + done.stderr


def stage_seconds(output: str) -> dict[str, float]:
    """Each stage's own time, as it printed it (`[stage] done in N s`)."""
    return {stage: float(seconds) for stage, seconds in DONE.findall(output)}


def scratch_project(work: Path, overrides: Sequence[str]) -> Path:
    """A new git + DVC repository at `work` holding this project's pipeline, composed with
    Hydra `overrides` into its params.yaml."""
    for name in PROJECT_FILES:
        source, target = ROOT / name, work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    write_params(work / "params.yaml", overrides, work / "conf")
    run(["git", "init", "-q"], work)
    run(["dvc", "init", "-q", "--force"], work)
    link_types = subprocess.run(
        ["dvc", "config", "cache.type"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    if link_types:  # how this project links its cache, as a clone of it would
        run(["dvc", "config", "cache.type", link_types], work)
    return work
