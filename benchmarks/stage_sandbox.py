"""Run the train stage on this checkout's pipeline outputs in a scratch directory.

Shared by the resume and DDP benchmarks: the scratch directory holds its own params.yaml (the
checkout's, with overrides) and links to `data/augmented`, `models/judge.pt` and
`data/reference_features`, so nothing in the checkout is written. Run `dvc repro augment
reference_features` first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from datamatters.config import write_params  # noqa: E402
from datamatters.pipeline import stage_arguments  # noqa: E402

INPUTS = ["data/augmented", "models/judge.pt", "data/reference_features"]
TRAIN_ARGS = stage_arguments("train")


def sandbox(directory: Path, overrides: list[str]) -> Path:
    missing = [p for p in INPUTS if not (ROOT / p).exists()]
    if missing:
        sys.exit(f"missing {missing}: run `dvc repro augment reference_features` first")
    for name in INPUTS:
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).symlink_to(ROOT / name)
    write_params(directory / "params.yaml", overrides, ROOT / "conf")
    return directory


def train_command() -> list[str]:
    return [sys.executable, str(ROOT / "stages" / "train.py"), *TRAIN_ARGS]


def train_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def train(directory: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        train_command(), cwd=directory, env=train_env(), capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"train failed in {directory}:\n{done.stdout}\n{done.stderr}")
    return done
