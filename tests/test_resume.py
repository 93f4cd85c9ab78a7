"""A train stage killed with SIGKILL resumes from its last checkpoint and ends bit-identical.

Real processes: the stage script runs as `dvc repro` would run it, is killed as an out-of-memory
killer or a pre-empted machine would kill it, and is started again.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_stage_script, stage_env
from datamatters.config import write_params
from datamatters.data.contract import StageData, pixel_sha256, write_stage_data
from datamatters.pipeline import stage_arguments

TRAIN_ARGS = stage_arguments("train")
# 100 images in batches of 16: 6 batches, 12 optimizer steps an epoch; a checkpoint every 50
# steps falls mid-epoch, where resuming is hardest.
SETTINGS = [
    "train.kimg=1.92",  # 120 batches of 16: 240 GAN steps
    "datamodule.batch_size=16",
    "train.fid_samples=0",
    "train.checkpoint_every_n_steps=50",
    "model.generator.width=16",
    "model.discriminator.width=16",
]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def training_project(root: Path, *overrides: str, data_seed: int = 0) -> Path:
    rng = np.random.default_rng(data_seed)
    images = rng.integers(0, 256, size=(100, 32, 32, 1), dtype=np.uint8)
    manifest = pd.DataFrame(
        {
            "id": [f"{i:07d}" for i in range(100)],
            "source": [f"test:{i}" for i in range(100)],
            "sha256": [pixel_sha256(image) for image in images],
            "label": pd.Series([str(i % 3) for i in range(100)], dtype="string"),
            "split": "train",
        }
    )
    write_stage_data(root / "data" / "augmented", StageData(images, manifest))
    given = {override.split("=")[0] for override in overrides}
    settings = [s for s in SETTINGS if s.split("=")[0] not in given]
    write_params(root / "params.yaml", [*settings, *overrides], ROOT / "conf")
    return root


def start_training(cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "stages" / "train.py"), *TRAIN_ARGS],
        cwd=cwd,
        env=stage_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_after_first_checkpoint(cwd: Path) -> None:
    process = start_training(cwd)
    checkpoint = cwd / "checkpoints" / "train" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    output, _ = process.communicate()
    assert process.returncode == -signal.SIGKILL, f"training ended before the kill:\n{output}"
    assert not (cwd / "models" / "generator.pt").exists()


def test_a_killed_run_resumes_to_the_same_weights_and_curve(tmp_path) -> None:
    whole = training_project(tmp_path / "whole")
    done = run_stage_script("train", TRAIN_ARGS, whole)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (whole / "checkpoints" / "train").exists(), "a finished run leaves no resume state"

    killed = training_project(tmp_path / "killed")
    kill_after_first_checkpoint(killed)
    resumed = run_stage_script("train", TRAIN_ARGS, killed)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from checkpoints/train/last.ckpt at step 50" in resumed.stdout
    assert md5(killed / "models" / "generator.pt") == md5(whole / "models" / "generator.pt")

    tables = sorted((whole / "metrics" / "train").glob("plots/metrics/**/*.tsv"))
    assert {t.name for t in tables} >= {"d_loss_step.tsv", "g_loss_epoch.tsv"}
    for table in tables:
        one, other = (pd.read_csv(t, sep="\t") for t in (table, killed / table.relative_to(whole)))
        assert one["step"].tolist() == other["step"].tolist(), f"{table.name}: other steps"
        differing = (one != other).any(axis=1).sum()
        # an epoch mean is Lightning's running aggregate, which its checkpoint does not keep:
        # the interrupted epoch's mean covers the batches after the resume
        assert differing <= (1 if table.name.endswith("_epoch.tsv") else 0), table.name
    assert not (killed / "checkpoints" / "train").exists()


@pytest.mark.parametrize("change", ["train.seed=1", "data"])
def test_other_params_or_data_start_fresh(tmp_path, change) -> None:
    project = training_project(tmp_path)
    kill_after_first_checkpoint(project)
    if change == "data":
        training_project(tmp_path, data_seed=1)
    else:
        training_project(tmp_path, change)
    rerun = run_stage_script("train", TRAIN_ARGS, project)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "training from step 0" in rerun.stdout and "resuming" not in rerun.stdout
