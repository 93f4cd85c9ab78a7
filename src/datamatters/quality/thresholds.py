"""Thresholds judged against this dataset's own scores, unless the user pins an absolute value.

A relative threshold sits `z` robust standard deviations from the median, on the side that
matters (a low sharpness is bad, a high noise level is bad). The spread is the median absolute
deviation scaled to a standard deviation (1.4826 · MAD), so the flagged images themselves barely
move it, and never less than the check's `min_scale`: on a dataset whose scores are nearly all
alike (every MNIST background is exactly black) a zero spread would otherwise flag any difference.

Scores that span orders of magnitude are judged on a log scale (`TRANSFORMS`: log, log(1 + x),
or for a brightness level near white the log of the headroom above it); the threshold is always
reported back in the score's own units. A bare number in config is an absolute threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from datamatters.errors import InputError

PARAMS_FILE = "params.yaml"  # where every check's settings come from
RELATIVE, ABSOLUTE = "relative", "absolute"
MODES = (RELATIVE, ABSOLUTE)
MAD_TO_STD = 1.4826

Direction = Literal["low", "high"]


@dataclass(frozen=True)
class Threshold:
    """`{mode: relative, z: 4.0}` or `{mode: absolute, value: 12.5}` from a check's config."""

    mode: str = RELATIVE
    z: float = 4.0
    value: float | None = None

    @classmethod
    def parse(cls, spec: Any, default_z: float, where: str) -> Threshold:
        """From config: None (the check's default), a mapping, or a bare number (absolute).

        `where` is the setting's name within its check (`threshold`, `min_side`) for errors.
        """
        if spec is None:
            return cls(RELATIVE, float(default_z))
        if isinstance(spec, Threshold):
            return spec
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            return cls(ABSOLUTE, float(default_z), float(spec))
        if not isinstance(spec, Mapping):
            raise setting_error(
                where, repr(spec), "use {mode: relative, z: 4} or {mode: absolute, value: 10}"
            )
        spec = {str(key): spec[key] for key in spec}
        unknown = sorted(set(spec) - {"mode", "z", "value"})
        if unknown:
            raise setting_error(
                where, f"unknown keys {unknown}", "use mode, z (relative) or value (absolute)"
            )
        mode = spec.get("mode", RELATIVE)
        if mode not in MODES:
            raise setting_error(f"{where}.mode", repr(mode), f"use one of {', '.join(MODES)}")
        if mode == ABSOLUTE:
            if spec.get("value") is None:
                raise setting_error(
                    f"{where}.value", "missing", "an absolute threshold needs a value"
                )
            return cls(ABSOLUTE, float(default_z), float(spec["value"]))
        z = float(spec.get("z", default_z) if spec.get("z") is not None else default_z)
        if not z > 0:
            raise setting_error(
                f"{where}.z", repr(spec.get("z")), "use a positive number of robust stds"
            )
        return cls(RELATIVE, z)

    def resolve(
        self,
        scores: np.ndarray,
        direction: Direction,
        *,
        transform: str = "linear",
        min_scale: float = 0.0,
    ) -> float | None:
        """The absolute cut-off in score units; None when no score is finite (nothing to judge).

        `transform` (a key of TRANSFORMS) is the scale the statistics are taken on, and
        `min_scale` is in its units.
        """
        if self.mode == ABSOLUTE:
            return self.value
        forward, backward, increasing = TRANSFORMS[transform]
        values = np.asarray(scores, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = forward(values[np.isfinite(values)])
        values = values[np.isfinite(values)]
        if not len(values):
            return None
        centre, spread = robust_centre_and_spread(values)
        spread = max(spread, float(min_scale))
        low_is_bad = (direction == "low") == increasing  # the bad side, on the transformed scale
        cut = centre - self.z * spread if low_is_bad else centre + self.z * spread
        return float(backward(cut))


def _log(values: np.ndarray) -> np.ndarray:
    return np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)


# name: (forward, inverse, increasing). "headroom" is for a 0-255 brightness level near white:
# log(1 + 255 - level), so 250 and 245 differ as much as 155 and 60 do.
TRANSFORMS = {
    "linear": (lambda v: v, lambda c: c, True),
    "log1p": (lambda v: np.log1p(np.maximum(v, 0.0)), np.expm1, True),
    "log": (_log, np.exp, True),
    "headroom": (
        lambda v: np.log1p(np.maximum(255.0 - v, 0.0)),
        lambda c: 255.0 - np.expm1(c),
        False,
    ),
}


def robust_centre_and_spread(values: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 · MAD (a standard deviation for normal data) of the finite values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    centre = float(np.median(values))
    return centre, MAD_TO_STD * float(np.median(np.abs(values - centre)))


def beyond(scores: np.ndarray, threshold: float | None, direction: Direction) -> np.ndarray:
    """Rows strictly past the threshold on the bad side; NaN scores are never flagged."""
    scores = np.asarray(scores, dtype=np.float64)
    if threshold is None:
        return np.zeros(scores.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return scores < threshold if direction == "low" else scores > threshold


def setting_error(setting: str, problem: str, fix: str) -> InputError:
    """A bad setting of a check, named within the check (`threshold.mode='quantile'`).

    A check does not know where it was configured (`quality.checks.blur` or
    `reference.quality.checks.blur`); `assess.configured_check`, which does, puts that key in front.
    """
    return InputError(PARAMS_FILE, f"{setting}={problem}", fix)
