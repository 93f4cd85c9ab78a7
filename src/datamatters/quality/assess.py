"""Run the configured checks over a stage directory and decide which rows to keep."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from datamatters.data.contract import StageData
from datamatters.quality.checks import Check, decodable

log = logging.getLogger("datamatters")


def assess(data: StageData, checks: Mapping[str, Check]) -> tuple[StageData, dict]:
    """Adds `issues` (names of every check that flagged the row), `keep` and `score_<check>`.

    Undecodable rows are never kept whatever the configuration: they have no pixels to train on.
    """
    manifest = data.manifest.copy()
    issues: list[list[str]] = [[] for _ in range(len(manifest))]
    dropped = ~decodable(manifest)
    report: dict[str, float | int] = {"images": len(manifest)}
    for name, check in checks.items():
        if not check.enabled:
            continue
        result = check.run(data)
        for row in np.flatnonzero(result.flagged):
            issues[row].append(name)
        if result.scores is not None:
            manifest[f"score_{name}"] = result.scores
        if result.threshold is not None:
            report[f"{name}_threshold"] = result.threshold
        if check.action == "drop":
            dropped |= result.flagged
        report[f"{name}_flagged"] = int(result.flagged.sum())
        log.info("%-18s %-4s flagged %d", name, check.action, int(result.flagged.sum()))
    manifest["issues"] = issues
    manifest["keep"] = ~dropped
    report["kept"] = int((~dropped).sum())
    report["kept_fraction"] = round(float((~dropped).mean()), 6) if len(manifest) else 0.0
    return StageData(data.images, manifest), report
