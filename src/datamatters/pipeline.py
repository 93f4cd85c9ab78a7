"""The pipeline as `dvc.yaml` declares it, read in one place instead of repeated by its users.

Stage scripts get their paths as flags from `dvc.yaml`'s commands; everything else that needs a
path or the stage that writes it (an error's fix, the trace report's lineage) asks this module,
so renaming an output is an edit of `dvc.yaml` alone.
"""

from __future__ import annotations

import shlex
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

DVC_YAML = Path(__file__).resolve().parents[2] / "dvc.yaml"


@cache
def _stages(dvc_yaml: Path) -> dict[str, dict[str, Any]]:
    return yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]


def _stage(stage: str, dvc_yaml: Path) -> dict[str, Any]:
    stages = _stages(dvc_yaml)
    if stage not in stages:
        raise KeyError(f"{dvc_yaml} has no stage '{stage}'; its stages: {', '.join(stages)}")
    return stages[stage]


def _paths(entries: list[Any]) -> list[str]:
    """Paths of `outs`/`metrics`/`plots` entries, which are a path or `{path: options}`."""
    return [entry if isinstance(entry, str) else next(iter(entry)) for entry in entries]


def stage_arguments(stage: str, dvc_yaml: Path = DVC_YAML) -> list[str]:
    """The arguments `dvc.yaml`'s command gives a stage script: what `python stages/X.py` takes."""
    command = shlex.split(_stage(stage, dvc_yaml)["cmd"])
    return command[2:]  # after `python stages/<stage>.py`


def outputs(stage: str, dvc_yaml: Path = DVC_YAML) -> list[str]:
    """What a stage writes (`outs`, then `metrics` and `plots`), in the order dvc.yaml lists it."""
    entry = _stage(stage, dvc_yaml)
    return [p for key in ("outs", "metrics", "plots") for p in _paths(entry.get(key, []))]


def all_outputs(dvc_yaml: Path = DVC_YAML) -> list[str]:
    """Every stage's outputs, each once."""
    return sorted({p for stage in _stages(dvc_yaml) for p in outputs(stage, dvc_yaml)})


def output_folders(dvc_yaml: Path = DVC_YAML) -> list[Path]:
    """The folders every stage's outputs sit in (`data/`, `models/`, `metrics/`, ...)."""
    return sorted({(dvc_yaml.parent / p).parent for p in all_outputs(dvc_yaml)})


def metrics_file(stage: str, dvc_yaml: Path = DVC_YAML) -> str:
    """The stage's own metrics file (`metrics/<stage>.json` for most)."""
    files = _paths(_stage(stage, dvc_yaml).get("metrics", []))
    if not files:
        raise KeyError(f"stage '{stage}' declares no metrics file in {dvc_yaml}")
    return files[0]


def producer_of(path: str | Path, dvc_yaml: Path = DVC_YAML) -> str | None:
    """The stage that writes `path` (or the directory holding it), None when no stage does.

    `path` is read relative to the project root, as dvc.yaml's paths are.
    """
    wanted = PurePosixPath(Path(path).as_posix())
    for stage in _stages(dvc_yaml):
        for out in outputs(stage, dvc_yaml):
            if wanted == PurePosixPath(out) or PurePosixPath(out) in wanted.parents:
                return stage
    return None


def rerun_fix(path: str | Path, dvc_yaml: Path = DVC_YAML) -> str:
    """What to tell a user whose input `path` is missing or broken: re-run the stage writing it."""
    producer = producer_of(path, dvc_yaml)
    if producer is None:
        return f"produce {path} (no stage in dvc.yaml writes it), or pass the path a stage wrote"
    return f"run `dvc repro {producer}` to produce it"
