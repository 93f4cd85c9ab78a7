"""Hydra composition of conf/ into params.yaml, done exactly the way `dvc exp run` does it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dvc.utils.hydra import compose_and_dump

CONFIG_DIR = Path("conf")
CONFIG_NAME = "config"


def write_params(
    output: Path, overrides: Sequence[str] = (), config_dir: Path = CONFIG_DIR
) -> None:
    """Compose `config_dir` with Hydra `overrides` and write the resolved result to `output`.

    Delegating to DVC's own function keeps `dvc repro` (which reads params.yaml) and
    `dvc exp run -S ...` (which regenerates it) byte-for-byte in agreement.
    """
    compose_and_dump(
        output,
        str(config_dir.resolve()),
        None,
        CONFIG_NAME,
        str(config_dir.resolve().parent),  # where DVC looks for Hydra plugins: the repo root
        list(overrides),
    )
