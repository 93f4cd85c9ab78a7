"""Shared fixtures: the project root, Hydra composition as DVC does it, tiny image folders."""

from __future__ import annotations

import os
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
