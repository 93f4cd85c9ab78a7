"""Shared fixtures: the project root, Hydra composition as DVC does it, tiny image folders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# The whole pipeline at toy scale, for end-to-end tests: 300 images, two training batches.
TINY = [
    "data.limit=300",
    "judge.max_epochs=2",
    "labeling.audit.folds=2",
    "labeling.audit.classifier.max_epochs=1",
    "trainer.max_epochs=1",
    "train.kimg=0.064",  # 2 batches of 32
    "datamodule.batch_size=32",
    "eval.metrics.num_samples=100",
    "eval.metrics.kid_subset_size=50",
    "eval.metrics.inception_samples=10",
    "eval.metrics.bootstrap_rounds=10",
    "train.fid_samples=50",
]


def compose_config(*overrides: str) -> DictConfig:
    """Compose conf/ the way `dvc exp run` does (initialize, compose, resolve)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose(config_name="config", overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return cfg


def stage_env() -> dict[str, str]:
    """Run stage scripts with this interpreter and this checkout's package."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_stage_script(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{name}.py"), *args],
        cwd=cwd,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


PROJECT_FILES = [
    "conf",
    "stages",
    "src",
    "dvc.yaml",
    "pyproject.toml",
    ".dvc/config",
    ".dvcignore",
    ".gitignore",
]


def command_env() -> dict[str, str]:
    """The environment real git, dvc and datamatters commands run with in the tests."""
    return stage_env() | {
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }


def sh(cwd: Path, *cmd: str) -> str:
    """Run a real command (git, dvc, datamatters) in `cwd`; fail the test with its output."""
    env = command_env()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", output))


def make_project(repo: Path, overrides: list[str]) -> Path:
    """A copy of this project at `repo`, its params composed with `overrides`, in its own git
    repo with DVC initialised; its default remote resolves beside `repo`."""
    from datamatters.config import write_params

    for name in PROJECT_FILES:
        source, target = ROOT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    write_params(repo / "params.yaml", overrides, repo / "conf")
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q", "--force")
    shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "project")
    return repo


@dataclass(frozen=True)
class Reproduced:
    project: Path  # the toy-scale project after its first `dvc repro`, committed and pushed
    output: str  # what that `dvc repro` printed
    origin: Path  # a bare git repository cloned from the project right then


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> Reproduced:
    """One real `dvc repro` of the toy-scale project, shared by the end-to-end tests.

    test_pipeline goes on working in the project; test_sharing clones `origin`, a snapshot taken
    right after the repro, so it never sees test_pipeline's later edits. Its data is pushed to
    the project's default remote, a folder beside the project where every clone's resolves too.
    """
    root = tmp_path_factory.mktemp("reproduced")
    project = make_project(root / "project", TINY)
    output = sh(project, "dvc", "repro")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "after repro")
    sh(project, "dvc", "push")
    sh(root, "git", "clone", "-q", "--bare", str(project), "origin.git")
    return Reproduced(project, output, root / "origin.git")


def write_image(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes of eight distinct 20×24 RGB images each, as PNG and JPEG."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for label in ("cat", "dog", "owl"):
        for i in range(8):
            pixels = rng.integers(0, 256, size=(24, 20, 3), dtype=np.uint8)
            write_image(root / label / f"{i:02d}.{'png' if i % 2 else 'jpg'}", pixels)
    return root
