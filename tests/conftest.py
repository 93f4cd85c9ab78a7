"""Shared fixtures: the project root, Hydra composition as DVC does it, tiny image folders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


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


def sh(cwd: Path, *cmd: str) -> str:
    """Run a real command (git, dvc, datamatters) in `cwd`; fail the test with its output."""
    env = stage_env() | {
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
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
