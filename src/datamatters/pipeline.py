"""The pipeline as `dvc.yaml` declares it, read in one place instead of repeated by its users."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

DVC_YAML = Path(__file__).resolve().parents[2] / "dvc.yaml"


def stage_arguments(stage: str, dvc_yaml: Path = DVC_YAML) -> list[str]:
    """The arguments `dvc.yaml`'s command gives a stage script: what `python stages/X.py` takes."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    if stage not in stages:
        raise KeyError(f"{dvc_yaml} has no stage '{stage}'; its stages: {', '.join(stages)}")
    command = shlex.split(stages[stage]["cmd"])
    return command[2:]  # after `python stages/<stage>.py`
