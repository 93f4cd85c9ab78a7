"""Metric names: statistic, features and sample count (`fid_judge_1k`), as NVIDIA's name theirs.

A name fixes its protocol, so a table only ever compares like with like. Evaluation formats
names here and the trace parses them here, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

FEATURES = ("judge", "inception")
BOUNDS = ("ci95_low", "ci95_high")  # the bootstrap 95% interval of a statistic
SPREAD = "std"
_NAME = re.compile(
    rf"(?P<statistic>[a-z]+(?:_[a-z]+)*?)_(?P<features>{'|'.join(FEATURES)})"
    r"_(?P<samples>\d+(?:\.\d+)?k|\d+)(?:_(?P<detail>[a-z0-9_]+))?"
)


def sample_tag(count: int) -> str:
    """1000 -> '1k', 2500 -> '2.5k', 500 -> '500'."""
    return f"{count / 1000:g}k" if count >= 1000 else str(count)


def _count(tag: str) -> int:
    return round(float(tag[:-1]) * 1000) if tag.endswith("k") else int(tag)


@dataclass(frozen=True)
class MetricName:
    """`fid_judge_1k_ci95_low`: the statistic, the features it is computed on, how many
    generated samples it measured, and which part of the statistic (mean, std, a bound) it is."""

    statistic: str  # fid, kid, is, precision, memorization, cond_acc, ...
    features: str  # one of FEATURES
    samples: int
    detail: str = ""  # e.g. mean, std, ci95_low, class_mean

    def format(self) -> str:
        name = f"{self.statistic}_{self.features}_{sample_tag(self.samples)}"
        return f"{name}_{self.detail}" if self.detail else name

    def __str__(self) -> str:
        return self.format()

    @staticmethod
    def parse(name: str) -> MetricName | None:
        """The parts of `name`, or None for a name outside the schema (`generated_images`)."""
        match = _NAME.fullmatch(name)
        if match is None:
            return None
        parsed = MetricName(
            match["statistic"], match["features"], _count(match["samples"]), match["detail"] or ""
        )
        return parsed if parsed.format() == name else None  # `1.0k` is not how counts are written

    @property
    def is_bound(self) -> bool:
        """One end of another metric's interval, read beside that metric rather than on its own."""
        return self.detail.endswith(BOUNDS)

    @property
    def is_spread(self) -> bool:
        """The spread of another metric's estimate (`kid_judge_1k_std`), not a quality score."""
        return self.detail.rpartition("_")[2] == SPREAD

    @property
    def is_score(self) -> bool:
        """A value to compare runs on: neither an interval bound nor a spread."""
        return not (self.is_bound or self.is_spread)

    def bounds(self) -> tuple[MetricName, MetricName]:
        """The names of this metric's 95% interval, low then high."""
        low, high = (
            replace(self, detail=f"{self.detail}_{bound}" if self.detail else bound)
            for bound in BOUNDS
        )
        return low, high

    def sibling(self, statistic: str) -> MetricName:
        """Another statistic on the same features and samples, e.g. the precision beside an FID."""
        return replace(self, statistic=statistic, detail="")
