"""Queue a filter ablation: the pipeline with each filter switched off, one at a time.

DVC's grid syntax (`-S 'a=x,y'`) multiplies axes, and an ablation is not a grid: each arm flips
exactly one filter. So this only writes the `dvc exp run --queue` commands; DVC's queue runs them.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from datamatters.config import CONFIG_DIR, write_params

BASELINE = "all-on"


def ablation_arms(overrides: Sequence[str] = (), config_dir: Path = CONFIG_DIR) -> dict[str, str]:
    """Arm name -> the override that switches off one filter that `overrides` leave on.

    The undecodable check has no arm: undecodable rows are never trained on whatever it says.
    """
    with tempfile.TemporaryDirectory() as tmp:
        write_params(Path(tmp) / "params.yaml", overrides, config_dir)
        params = OmegaConf.load(Path(tmp) / "params.yaml")
    arms = {
        f"{name}-off": f"quality.checks.{name}.enabled=false"
        for name, check in params.quality.checks.items()
        if params.quality.enabled and check.enabled and not check._target_.endswith(".Undecodable")
    }
    if params.labeling.audit.enabled:
        arms["label_audit-off"] = "labeling.audit.enabled=false"
    return arms


def ablation_commands(
    name: str,
    overrides: Sequence[str],
    seeds: Sequence[int],
    baseline_seeds: Sequence[int],
    config_dir: Path = CONFIG_DIR,
) -> list[list[str]]:
    """`dvc exp run --queue` for the baseline (every filter on) and each arm, named `name-...`.

    The baseline gets more seeds than the arms because every arm is compared with it; the
    report's noise estimate pools the spread between seeds of every group that has several.
    """
    arms = {BASELINE: None, **ablation_arms(overrides, config_dir)}
    commands = []
    for arm, switch in arms.items():
        for seed in baseline_seeds if switch is None else seeds:
            sets = [*overrides, *([switch] if switch else []), f"train.seed={seed}"]
            queue = ["dvc", "exp", "run", "--queue", "-n", f"{name}-{arm}-s{seed}"]
            commands.append(queue + [arg for value in sets for arg in ("-S", value)])
    return commands


def queue_ablation(commands: Sequence[Sequence[str]]) -> None:
    for command in commands:
        subprocess.run(command, check=True)
