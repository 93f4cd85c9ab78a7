"""The quality checks. Each is a small unit with `enabled`, `action` and its own threshold.

A check returns a boolean flag per row and, where it has one, the score behind the flag; scores
stay in the manifest so a user can re-threshold without re-scoring. Undecodable rows (all-zero
pixels) are never scored by any check but `undecodable`: their scores are NaN.

Thresholds are dataset-relative by default (see `thresholds.py`): `threshold: {mode: relative,
z: ...}` judges a score against this dataset's own median and robust spread, `{mode: absolute,
value: ...}` pins it (in the score's units). The resolved cut-off is reported either way. Each
check's default `z` (and smallest spread, `min_scale`) was chosen on 3,957 real MNIST digits and
on crops of scikit-image's photographs, so that either flags about 0.2% of clean images or fewer
per check, while the corruptions of `data/corrupt.py` are all caught.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from datamatters.data.contract import StageData
from datamatters.errors import InputError
from datamatters.quality import features as F
from datamatters.quality.near_duplicates.canonical_hash import view_hashes
from datamatters.quality.thresholds import Direction, Threshold, beyond, setting_error

ACTIONS = ("drop", "flag")


@dataclass(frozen=True)
class QualityContext:
    """What the quality stage knows besides the pixels.

    `features`: N×D floats, one row per manifest row (the pipeline's judge network's embedding),
    for the density check (`outliers`); None means it falls back to simple image features.
    `reference`: the reference split, for the check that no train image copies one of it.
    `scratch`: a directory on disk for what is too large to keep in memory (the views the copy
    checks search: `canonical_hash.view_hashes`); None keeps everything in memory.
    """

    features: np.ndarray | None = None
    reference: StageData | None = None
    scratch: Path | None = None


@dataclass
class CheckInputs:
    """What every check of one `assess` run reads: the stage directory, the stage's context, and
    the intermediates several checks share, each computed once per run, on first use (as
    Datalab's issue managers share the statistics one of them computed).

    `usable`: the mask of decodable rows, the only rows any check but `undecodable` scores;
    `rows`: their indices. `per_image(measure)`: a brightness check's per-row scores, streamed a
    chunk at a time from the memory-mapped images, so no check holds every image's float
    brightness (4 bytes a pixel: 2.6 GB for 160,000 64×64 images). `view_hashes(method)`: those
    rows' views (canonical pose, as is; uint8 R×2×32×32, 2 KB an image) and their hashes, which
    both copy checks search (`near_duplicates`, `reference_leak`). All are read-only: every check
    sees the same.
    """

    data: StageData
    context: QualityContext = field(default_factory=QualityContext)
    _hashes: dict[str, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False
    )

    @cached_property
    def usable(self) -> np.ndarray:
        return _read_only(decodable(self.data.manifest))

    @cached_property
    def rows(self) -> np.ndarray:
        return _read_only(np.flatnonzero(self.usable))

    def per_image(self, measure: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """`measure` of the brightness (float32, 0-255) of each decodable row, streamed a chunk
        at a time from the (memory-mapped) images: no check holds every image's brightness."""
        return F.per_chunk(self.data.images, lambda chunk: measure(F.luminance(chunk)), self.rows)

    def view_hashes(self, method: str) -> tuple[np.ndarray, np.ndarray]:
        """Views and their `method` hashes of the decodable rows, in `rows`' order: computed once,
        since the near-duplicate and the reference-leak checks search the same images."""
        if method not in self._hashes:
            grey = F.grey_rows(self.data.images, self.rows)
            views, codes = view_hashes(grey, method, self.context.scratch)
            self._hashes[method] = _read_only(views), _read_only(codes)
        return self._hashes[method]


def _read_only(values: np.ndarray) -> np.ndarray:
    values.setflags(write=False)
    return values


@dataclass(frozen=True)
class CheckResult:
    flagged: np.ndarray
    scores: np.ndarray | None = None
    threshold: float | None = None
    columns: dict[str, Any] = field(default_factory=dict)  # extra manifest columns, one per row
    metrics: dict[str, float | int] = field(default_factory=dict)  # extra report entries


class Check:
    """Base: subclasses implement `run`.

    A check has no name of its own: it is named by its key in the params section that configures
    it (`assess.configured_checks`), as Datalab's issue managers are named by their registry key,
    so the report's `<check>_...` entries and an error's params key are the ones the user wrote.
    """

    def __init__(self, enabled: bool = True, action: str = "drop") -> None:
        if action not in ACTIONS:
            raise setting_error("action", repr(action), f"use one of {', '.join(ACTIONS)}")
        self.enabled, self.action = enabled, action

    def run(self, inputs: CheckInputs) -> CheckResult:
        raise NotImplementedError


def decodable(manifest: pd.DataFrame) -> np.ndarray:
    return manifest["decode_error"].isna().to_numpy()


class Undecodable(Check):
    """Files that ingest could not turn into pixels; their rows hold only the reason."""

    def run(self, inputs: CheckInputs) -> CheckResult:
        return CheckResult(flagged=~inputs.usable)


class ScoredCheck(Check):
    """A check that scores every decodable row and flags the scores past a threshold.

    Subclasses set how a score is judged: `direction` (which side is bad), `transform` (scores
    spanning orders of magnitude are judged on a log scale), `min_scale` (the smallest spread a
    relative threshold assumes, in the transformed units) and `default_z`.
    """

    direction: ClassVar[Direction] = "low"
    transform: ClassVar[str] = "linear"
    min_scale: ClassVar[float] = 0.0
    default_z: ClassVar[float] = 4.0

    def __init__(self, enabled: bool = True, action: str = "drop", threshold: Any = None) -> None:
        super().__init__(enabled, action)
        self.threshold = Threshold.parse(threshold, self.default_z, "threshold")

    def measure(self, inputs: CheckInputs) -> np.ndarray:
        """Scores of `inputs.rows` (the decodable rows), NaN where a score is undefined."""
        raise NotImplementedError

    def run(self, inputs: CheckInputs) -> CheckResult:
        usable, rows = inputs.usable, inputs.rows
        scores = np.full(len(usable), np.nan)
        if len(rows):
            scores[rows] = self.measure(inputs)
        cut = self.threshold.resolve(
            scores[rows], self.direction, transform=self.transform, min_scale=self.min_scale
        )
        return CheckResult(usable & beyond(scores, cut, self.direction), scores, cut)


class Blur(ScoredCheck):
    """Out of focus or upscaled: little of the image's contrast is in fine detail.

    Score: variance of the Laplacian over the image's own variance (NaN for a flat image, which is
    `low_information`'s), judged on a log scale; low is bad.
    """

    direction = "low"
    transform = "log"
    min_scale = 0.05
    default_z = 5.0

    def measure(self, inputs):
        return inputs.per_image(F.sharpness)


class Noise(ScoredCheck):
    """Sensor or scan noise. Score: a robust pixel-noise standard deviation (grey levels).

    High is bad. Judged on a log scale, with a spread of at least 0.25 there: a clean synthetic
    or scanned dataset is nearly noise-free, and a fraction of a grey level means nothing.
    """

    direction = "high"
    transform = "log1p"
    min_scale = 0.25
    default_z = 5.0

    def measure(self, inputs):
        return inputs.per_image(F.noise_level)


class Dark(ScoredCheck):
    """Underexposed. Score: the 99th percentile of brightness (0-255), the image's highlights.

    Low is bad; judged on a log scale. Not the mean, which would call a thin white-on-black digit
    dark. With a smallest spread of 0.15 (log units), a dataset whose highlights are all alike
    (every MNIST digit reaches white) flags an image at z=6 when its highlights are under ~40% of
    the typical level: a darkened image, not a faint or blurred stroke.
    """

    direction = "low"
    transform = "log1p"
    min_scale = 0.15
    default_z = 6.0

    def measure(self, inputs):
        return inputs.per_image(lambda grey: F.brightness_percentile(grey, 99))


class Light(ScoredCheck):
    """Overexposed, washed out: a high mean and little contrast leave no dark pixels.

    Score: the 5th percentile of brightness (0-255), the image's black level; high is bad. Judged
    on the log of the headroom left above it (255 − score), so near white small steps count.
    """

    direction = "high"
    transform = "headroom"
    min_scale = 0.1
    default_z = 6.0

    def measure(self, inputs):
        return inputs.per_image(lambda grey: F.brightness_percentile(grey, 5))


class LowInformation(ScoredCheck):
    """Blank, nearly constant or nearly empty images.

    Score: the pixel standard deviation over the image's own brightness range (`features.spread`),
    so a darkened or washed-out image, which other checks name, is not called empty; low is bad.
    Whatever the threshold, an image whose standard deviation is under `min_std` grey levels is
    flagged: a blank frame stays blank on any dataset.
    """

    direction = "low"
    min_scale = 0.02
    default_z = 5.0

    def __init__(
        self,
        enabled: bool = True,
        action: str = "drop",
        min_std: float = 2.0,
        threshold: Any = None,
    ) -> None:
        super().__init__(enabled, action, threshold)
        self.min_std = float(min_std)

    def measure(self, inputs):
        return inputs.per_image(F.spread)

    def run(self, inputs: CheckInputs) -> CheckResult:
        result = super().run(inputs)
        usable = inputs.usable
        std = np.full(len(usable), np.nan)
        std[inputs.rows] = inputs.per_image(lambda grey: grey.reshape(len(grey), -1).std(axis=1))
        blank = usable & (std < self.min_std)
        return CheckResult(
            result.flagged | blank,
            result.scores,
            result.threshold,
            metrics={"min_std": self.min_std, "blank": int(blank.sum())},
        )


class OddSize(ScoredCheck):
    """Originals of an unusual shape or size (the manifest's `width`/`height`, before resizing).

    Score: the aspect ratio, long side over short side (1 = square), judged on a log scale; high
    is bad. Also flagged: originals whose short side is unusually small for this dataset
    (`min_side`, relative on a log scale by default, or absolute in pixels).
    """

    direction = "high"
    transform = "log"
    min_scale = 0.1
    default_z = 5.0
    min_side_scale = 0.15
    min_side_z = 5.0

    def __init__(
        self,
        enabled: bool = True,
        action: str = "drop",
        threshold: Any = None,
        min_side: Any = None,
    ) -> None:
        super().__init__(enabled, action, threshold)
        self.min_side = Threshold.parse(min_side, self.min_side_z, "min_side")

    def _sides(self, manifest: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        missing = [c for c in ("width", "height") if c not in manifest]
        if missing:
            raise InputError(
                "manifest.parquet",
                f"judging original sizes needs them, but the manifest lacks {missing}",
                "re-run `dvc repro ingest`, which records width and height",
            )
        sides = [
            pd.to_numeric(manifest[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            for c in ("width", "height")
        ]
        width, height = (np.where(s > 0, s, np.nan) for s in sides)
        return width, height

    def measure(self, inputs):
        width, height = self._sides(inputs.data.manifest)
        return (np.fmax(width, height) / np.fmin(width, height))[inputs.rows]

    def run(self, inputs: CheckInputs) -> CheckResult:
        result = super().run(inputs)
        usable = inputs.usable
        width, height = self._sides(inputs.data.manifest)
        short = np.where(usable, np.fmin(width, height), np.nan)
        cut = self.min_side.resolve(
            short[usable], "low", transform="log", min_scale=self.min_side_scale
        )
        small = usable & beyond(short, cut, "low")
        metrics = {"small": int(small.sum())}
        if cut is not None:
            metrics["min_side"] = round(cut, 3)
        return CheckResult(result.flagged | small, result.scores, result.threshold, metrics=metrics)
