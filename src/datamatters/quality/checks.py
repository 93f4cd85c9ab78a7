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

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from datamatters.data.contract import StageData
from datamatters.quality import features as F
from datamatters.quality.near_duplicates import find_near_duplicates, group_roots
from datamatters.quality.thresholds import Direction, Threshold, beyond
from datamatters.stage import StageError

ACTIONS = ("drop", "flag")


@dataclass(frozen=True)
class QualityContext:
    """What the quality stage knows besides the pixels.

    `features`: N×D floats, one row per manifest row (the pipeline's judge network's embedding),
    for the density check (`outliers`); None means it falls back to simple image features.
    """

    features: np.ndarray | None = None


@dataclass(frozen=True)
class CheckResult:
    flagged: np.ndarray
    scores: np.ndarray | None = None
    threshold: float | None = None
    columns: dict[str, Any] = field(default_factory=dict)  # extra manifest columns, one per row
    metrics: dict[str, float | int] = field(default_factory=dict)  # extra report entries


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

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        raise NotImplementedError


def decodable(manifest: pd.DataFrame) -> np.ndarray:
    return manifest["decode_error"].isna().to_numpy()


class Undecodable(Check):
    """Files that ingest could not turn into pixels; their rows hold only the reason."""

    name = "undecodable"

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        return CheckResult(flagged=~decodable(data.manifest))


class ExactDuplicates(Check):
    """Identical decoded pixels: every copy after the first (in manifest order) is flagged."""

    name = "exact_duplicates"

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        manifest = data.manifest
        usable = decodable(manifest)
        repeats = manifest["sha256"].duplicated(keep="first").to_numpy()
        return CheckResult(flagged=usable & repeats)


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
        self.threshold = Threshold.parse(threshold, self.default_z, f"{self.name}.threshold")

    def measure(self, data: StageData, rows: np.ndarray, context: QualityContext) -> np.ndarray:
        """Scores of `rows` (indices of decodable rows), NaN where a score is undefined."""
        raise NotImplementedError

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        usable = decodable(data.manifest)
        rows = np.flatnonzero(usable)
        scores = np.full(len(usable), np.nan)
        if len(rows):
            scores[rows] = self.measure(data, rows, context or QualityContext())
        cut = self.threshold.resolve(
            scores[rows], self.direction, transform=self.transform, min_scale=self.min_scale
        )
        return CheckResult(usable & beyond(scores, cut, self.direction), scores, cut)


def _per_image(data: StageData, rows: np.ndarray, measure) -> np.ndarray:
    """`measure` of the brightness of each of `rows`, a chunk at a time."""
    return F.per_chunk(data.images, lambda batch: measure(F.luminance(batch)), rows=rows)


class Blur(ScoredCheck):
    """Out of focus or upscaled: little of the image's contrast is in fine detail.

    Score: variance of the Laplacian over the image's own variance (NaN for a flat image, which is
    `low_information`'s), judged on a log scale; low is bad.
    """

    name = "blur"
    direction = "low"
    transform = "log"
    min_scale = 0.05
    default_z = 5.0

    def measure(self, data, rows, context):
        return _per_image(data, rows, F.sharpness)


class Noise(ScoredCheck):
    """Sensor or scan noise. Score: a robust pixel-noise standard deviation (grey levels).

    High is bad. Judged on a log scale, with a spread of at least 0.25 there: a clean synthetic
    or scanned dataset is nearly noise-free, and a fraction of a grey level means nothing.
    """

    name = "noise"
    direction = "high"
    transform = "log1p"
    min_scale = 0.25
    default_z = 5.0

    def measure(self, data, rows, context):
        return _per_image(data, rows, F.noise_level)


class Dark(ScoredCheck):
    """Underexposed. Score: the 99th percentile of brightness (0-255), the image's highlights.

    Low is bad; judged on a log scale. Not the mean, which would call a thin white-on-black digit
    dark. With a smallest spread of 0.15 (log units), a dataset whose highlights are all alike
    (every MNIST digit reaches white) flags an image at z=6 when its highlights are under ~40% of
    the typical level: a darkened image, not a faint or blurred stroke.
    """

    name = "dark"
    direction = "low"
    transform = "log1p"
    min_scale = 0.15
    default_z = 6.0

    def measure(self, data, rows, context):
        return _per_image(data, rows, lambda grey: F.brightness_percentile(grey, 99))


class Light(ScoredCheck):
    """Overexposed, washed out: a high mean and little contrast leave no dark pixels.

    Score: the 5th percentile of brightness (0-255), the image's black level; high is bad. Judged
    on the log of the headroom left above it (255 − score), so near white small steps count.
    """

    name = "light"
    direction = "high"
    transform = "headroom"
    min_scale = 0.1
    default_z = 6.0

    def measure(self, data, rows, context):
        return _per_image(data, rows, lambda grey: F.brightness_percentile(grey, 5))


class LowInformation(ScoredCheck):
    """Blank, nearly constant or nearly empty images.

    Score: the pixel standard deviation over the image's own brightness range (`features.spread`),
    so a darkened or washed-out image, which other checks name, is not called empty; low is bad.
    Whatever the threshold, an image whose standard deviation is under `min_std` grey levels is
    flagged: a blank frame stays blank on any dataset.
    """

    name = "low_information"
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

    def measure(self, data, rows, context):
        return _per_image(data, rows, F.spread)

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        result = super().run(data, context)
        usable = decodable(data.manifest)
        rows = np.flatnonzero(usable)
        std = np.full(len(usable), np.nan)
        std[rows] = _per_image(data, rows, lambda grey: grey.reshape(len(grey), -1).std(axis=1))
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

    name = "odd_size"
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
        self.min_side = Threshold.parse(min_side, self.min_side_z, f"{self.name}.min_side")

    def _sides(self, manifest: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        missing = [c for c in ("width", "height") if c not in manifest]
        if missing:
            raise StageError(
                "quality",
                "manifest.parquet",
                f"odd_size needs the original size but the manifest lacks {missing}",
                "re-run `dvc repro ingest`, which records width and height",
            )
        sides = [
            pd.to_numeric(manifest[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            for c in ("width", "height")
        ]
        width, height = (np.where(s > 0, s, np.nan) for s in sides)
        return width, height

    def measure(self, data, rows, context):
        width, height = self._sides(data.manifest)
        return (np.fmax(width, height) / np.fmin(width, height))[rows]

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        result = super().run(data, context)
        usable = decodable(data.manifest)
        width, height = self._sides(data.manifest)
        short = np.where(usable, np.fmin(width, height), np.nan)
        cut = self.min_side.resolve(
            short[usable], "low", transform="log", min_scale=self.min_side_scale
        )
        small = usable & beyond(short, cut, "low")
        metrics = {"small": int(small.sum())}
        if cut is not None:
            metrics["min_side"] = round(cut, 3)
        return CheckResult(result.flagged | small, result.scores, result.threshold, metrics=metrics)


class NearDuplicates(Check):
    """Near-copies (moved, slightly turned, re-encoded): all but the first of each group flagged.

    Perceptual hashes within `max_distance` bits are candidates (found sub-quadratically), and a
    candidate is confirmed when the two images, registered, have a gradient correlation of at
    least `min_similarity` (None: the hash distance alone decides). Groups are the connected
    pairs; the first row of a group in manifest order is kept.

    Exact copies are `exact_duplicates`' to flag: only the first row of each set of identical
    pixels is searched, and its copies join its group in the added columns without being flagged
    here. Columns: `near_duplicate_group` (-1 for none) and `near_duplicate_of` (the kept row's id).
    Score: the best registered similarity to any candidate (NaN when none was close enough).
    """

    name = "near_duplicates"

    def __init__(
        self,
        enabled: bool = True,
        action: str = "drop",
        max_distance: int = 10,
        min_similarity: float | None = 0.975,
        hash: str = "phash",
    ) -> None:
        super().__init__(enabled, action)
        where = f"quality.checks.{self.name}"
        if not 0 <= int(max_distance) <= 32:
            raise StageError(
                "quality", "params.yaml", f"{where}.max_distance={max_distance}", "use 0-32 bits"
            )
        if min_similarity is not None and not -1 <= float(min_similarity) <= 1:
            raise StageError(
                "quality",
                "params.yaml",
                f"{where}.min_similarity={min_similarity}",
                "use a correlation in [-1, 1], or null to trust the hash alone",
            )
        if hash not in ("phash", "dhash"):
            raise StageError(
                "quality", "params.yaml", f"{where}.hash={hash!r}", "use phash or dhash"
            )
        self.max_distance = int(max_distance)
        self.min_similarity = None if min_similarity is None else float(min_similarity)
        self.hash = hash

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        manifest = data.manifest
        n = len(manifest)
        usable = decodable(manifest)
        sha = manifest["sha256"].astype("string")
        repeat = sha.duplicated(keep="first").to_numpy() & sha.notna().to_numpy()
        searched = np.flatnonzero(usable & ~repeat)
        matches = find_near_duplicates(
            np.asarray(data.images[searched]) if len(searched) else data.images[:0],
            self.max_distance,
            self.min_similarity,
            self.hash,
        )
        roots = searched[group_roots(len(searched), matches.pairs)]
        root_of = np.full(n, -1, dtype=np.int64)
        root_of[searched] = roots
        # exact copies join the group of the first row with the same pixels
        first_row = pd.Series(searched, index=sha.iloc[searched].to_numpy())
        copies = np.flatnonzero(usable & repeat)
        if len(copies):
            originals = first_row.reindex(sha.iloc[copies].to_numpy()).to_numpy()
            known = ~pd.isna(originals)
            root_of[copies[known]] = root_of[originals[known].astype(np.int64)]
        member_counts = np.bincount(root_of[searched], minlength=n) if len(searched) else None
        in_group = np.zeros(n, dtype=bool)
        if member_counts is not None:
            in_group[searched] = member_counts[root_of[searched]] > 1
            in_group[copies] = (root_of[copies] >= 0) & (
                member_counts[np.maximum(root_of[copies], 0)] > 1
            )
        flagged = np.zeros(n, dtype=bool)
        flagged[searched] = in_group[searched] & (root_of[searched] != searched)
        group = np.full(n, -1, dtype=np.int64)
        kept_rows = np.unique(root_of[in_group])
        group[in_group] = np.searchsorted(kept_rows, root_of[in_group])
        ids = manifest["id"].astype("string").to_numpy(dtype=object, na_value=pd.NA)
        of = np.full(n, pd.NA, dtype=object)
        duplicate = in_group & (root_of != np.arange(n))
        of[duplicate] = ids[root_of[duplicate]]
        scores = None
        if matches.best_similarity is not None:
            scores = np.full(n, np.nan)
            scores[searched] = matches.best_similarity
        return CheckResult(
            flagged,
            scores,
            self.min_similarity,
            columns={
                "near_duplicate_group": group,
                "near_duplicate_of": pd.array(of, dtype="string"),
            },
            metrics={"groups": len(kept_rows), "candidates": matches.candidates},
        )


def _typical_unit(features: np.ndarray) -> np.ndarray:
    """Centre on the median row and scale so the median distance from it is 1."""
    centred = features - np.median(features, axis=0)
    typical = float(np.median(np.linalg.norm(centred, axis=1))) if len(features) else 0.0
    return centred / typical if typical > 1e-9 else centred


class Outliers(ScoredCheck):
    """Images in a sparse part of feature space: far from the other images of their class.

    Features: `features.appearance_features` (edge orientations and tones; never a download),
    joined with `QualityContext.features` (the judge's embedding) when the stage provides them.
    Neither alone suffices: on MNIST-5k with 1% natural-image crops injected, judge features
    caught 1 of 40 crops at the default z and appearance features missed digit-level oddities
    the judge sees; each half is scaled to a typical row norm of 1 so neither dominates. A labeled
    row is compared with its own class; unlabeled rows, and classes of fewer than
    `min_class_size` rows, with the whole dataset. Score: the mean distance to the `k` nearest
    neighbours over the median of the same in that group (1 = as dense as is typical there), so a
    class that is naturally spread out is not all outliers. Judged on a log scale; high is bad.
    """

    name = "outliers"
    direction = "high"
    transform = "log1p"
    min_scale = 0.05
    default_z = 6.0
    max_reference = 20_000  # a larger group has its neighbours searched among a fixed sample

    def __init__(
        self,
        enabled: bool = True,
        action: str = "drop",
        threshold: Any = None,
        k: int = 10,
        min_class_size: int = 20,
    ) -> None:
        super().__init__(enabled, action, threshold)
        if int(k) < 1:
            raise StageError(
                "quality", "params.yaml", f"quality.checks.outliers.k={k}", "use k >= 1"
            )
        self.k, self.min_class_size = int(k), max(int(min_class_size), int(k) + 1)

    def _features(self, data: StageData, rows: np.ndarray, context: QualityContext) -> np.ndarray:
        appearance = _typical_unit(F.per_chunk(data.images, F.appearance_features, rows=rows))
        if context.features is None:
            return appearance
        features = np.asarray(context.features)
        if features.ndim != 2 or len(features) != len(data.manifest):
            raise StageError(
                "quality",
                "features",
                f"expected one feature row per manifest row ({len(data.manifest)}), "
                f"got shape {features.shape}",
                "compute the features on the same stage directory the checks read",
            )
        return np.hstack([appearance, _typical_unit(features[rows].astype(np.float32))])

    def measure(self, data, rows, context):
        features = self._features(data, rows, context)
        labels = data.manifest["label"].astype("string").iloc[rows].reset_index(drop=True)
        sizes = labels.value_counts()
        classes = sizes[sizes >= self.min_class_size].index
        scores = np.full(len(rows), np.nan)
        for label in classes:
            members = np.flatnonzero((labels == label).fillna(False).to_numpy(dtype=bool))
            scores[members] = self._relative_density(features[members])
        rest = np.flatnonzero(~labels.isin(classes).fillna(False).to_numpy(dtype=bool))
        if len(rest):
            scores[rest] = self._relative_density(features)[rest]
        return scores

    def _relative_density(self, group: np.ndarray) -> np.ndarray:
        """Each row's mean distance to its k nearest others in `group`, over the group median."""
        from sklearn.neighbors import NearestNeighbors

        k = min(self.k, len(group) - 1)
        if k < 1:
            return np.full(len(group), np.nan)
        in_reference = np.ones(len(group), dtype=bool)
        reference = group
        if len(group) > self.max_reference:
            pick = np.random.default_rng(0).choice(len(group), self.max_reference, replace=False)
            in_reference[:] = False
            in_reference[pick] = True
            reference = group[in_reference]
        distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(reference).kneighbors(group)
        # a row of the reference finds itself first, at distance 0; any other row does not
        mean = np.where(in_reference, distances[:, 1:].mean(axis=1), distances[:, :-1].mean(axis=1))
        median = float(np.median(mean))
        if median <= 0:  # most of the group are exact copies of each other
            return np.where(mean > 0, np.inf, 1.0)
        return mean / median
