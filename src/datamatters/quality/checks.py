"""The quality checks. Each is a small unit with `enabled`, `action` and its own threshold.

A check returns a boolean flag per row and, where it has one, the score behind the flag; scores
stay in the manifest so a user can re-threshold without re-scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from datamatters.data.contract import StageData
from datamatters.stage import StageError

ACTIONS = ("drop", "flag")


@dataclass(frozen=True)
class CheckResult:
    flagged: np.ndarray
    scores: np.ndarray | None = None
    threshold: float | None = None


class Check:
    """Base: subclasses implement `run`; `name` is the key under `quality.checks`."""

    name = "check"

    def __init__(self, enabled: bool = True, action: str = "drop") -> None:
        if action not in ACTIONS:
            raise StageError(
                "quality",
                "params.yaml",
                f"quality.checks.{self.name}.action={action!r}",
                f"use one of {', '.join(ACTIONS)}",
            )
        self.enabled, self.action = enabled, action

    def run(self, data: StageData) -> CheckResult:
        raise NotImplementedError


def decodable(manifest: pd.DataFrame) -> np.ndarray:
    return manifest["decode_error"].isna().to_numpy()


class Undecodable(Check):
    """Files that ingest could not turn into pixels; their rows hold only the reason."""

    name = "undecodable"

    def run(self, data: StageData) -> CheckResult:
        return CheckResult(flagged=~decodable(data.manifest))


class ExactDuplicates(Check):
    """Identical decoded pixels: every copy after the first (in manifest order) is flagged."""

    name = "exact_duplicates"

    def run(self, data: StageData) -> CheckResult:
        manifest = data.manifest
        usable = decodable(manifest)
        repeats = manifest["sha256"].duplicated(keep="first").to_numpy()
        return CheckResult(flagged=usable & repeats)


class LowInformation(Check):
    """Blank or nearly constant images, scored by their pixel standard deviation (0-255)."""

    name = "low_information"

    def __init__(self, enabled: bool = True, action: str = "drop", min_std: float = 2.0) -> None:
        super().__init__(enabled, action)
        self.min_std = float(min_std)

    def run(self, data: StageData) -> CheckResult:
        flat = data.images.reshape(len(data.images), -1).astype(np.float32)
        scores = flat.std(axis=1)
        flagged = (scores < self.min_std) & decodable(data.manifest)
        return CheckResult(flagged, scores, self.min_std)
