"""Run the configured checks over a stage directory and decide which rows to keep."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from datamatters.data.contract import StageData
from datamatters.errors import InputError
from datamatters.quality.checks import Check, CheckInputs, QualityContext


def configured_checks(section: DictConfig, key: str) -> dict[str, Check]:
    """The checks the quality params section at `key` configures, by name; none when its
    `enabled` is false.

    A check's name is its key under `<key>.checks`: the registry is the config section itself, so
    the same classes serve `quality` and `reference.quality` under the names the user wrote.
    """
    if not section.enabled:
        return {}
    return {
        name: configured_check(cfg, f"{key}.checks.{name}") for name, cfg in section.checks.items()
    }


def configured_check(cfg: DictConfig, key: str) -> Check:
    """The check configured at params key `key`; an error in its settings names that key."""
    build = instantiate(cfg, _partial_=True)
    try:
        return build()
    except InputError as error:
        raise InputError(error.path, f"{key}.{error.problem}", error.fix) from None


def assess(
    data: StageData, checks: Mapping[str, Check], context: QualityContext | None = None
) -> tuple[StageData, dict]:
    """Adds `issues` (names of every check that flagged the row), `keep`, `score_<check>` and the
    columns checks add (e.g. `near_duplicate_group`, `near_duplicate_of`).

    The report holds, per enabled check, `<check>_flagged`, `<check>_action`, the resolved absolute
    `<check>_threshold` where it has one, and what else the check reports (`<check>_<key>`).
    Undecodable rows are never kept whatever the configuration: they have no pixels to train on.
    `context` carries what the checks may use besides pixels (features for the density checks).
    The intermediates several checks need (the decodable rows, their luminance) are computed once
    for the run and shared (`CheckInputs`).
    """
    inputs = CheckInputs(data, context if context is not None else QualityContext())
    manifest = data.manifest.copy()
    issues: list[list[str]] = [[] for _ in range(len(manifest))]
    dropped = ~inputs.usable
    report: dict[str, float | int | str] = {"images": len(manifest)}
    for name, check in checks.items():
        if not check.enabled:
            continue
        result = check.run(inputs)
        flagged = np.asarray(result.flagged, dtype=bool)
        for row in np.flatnonzero(flagged):
            issues[row].append(name)
        if result.scores is not None:
            manifest[f"score_{name}"] = result.scores
        for column, values in result.columns.items():
            manifest[column] = values
        if result.threshold is not None:
            report[f"{name}_threshold"] = round(float(result.threshold), 6)
        for key, value in result.metrics.items():
            report[f"{name}_{key}"] = value
        if check.action == "drop":
            dropped |= flagged
        report[f"{name}_flagged"] = int(flagged.sum())
    manifest["issues"] = issues
    manifest["keep"] = ~dropped
    report["kept"] = int((~dropped).sum())
    report["kept_fraction"] = round(float((~dropped).mean()), 6) if len(manifest) else 0.0
    return data.with_manifest(manifest), report
