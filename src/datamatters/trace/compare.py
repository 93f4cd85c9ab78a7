"""Which knobs a set of experiments varies, and which differences between them exceed the noise.

GAN training noise dwarfs the sampling noise a bootstrap interval measures: on this pipeline two
seeds of one configuration have differed by more than the whole interval width. So a verdict
rests on the spread between seeds when the set has replicates, pooled over every configuration
that has several (one estimate with more degrees of freedom than any pair), and falls back to
the sampling intervals, saying so, only when it has none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats

from datamatters.metrics.names import MetricName
from datamatters.trace.experiments import Experiment, paths

REPLICATE = "train.seed"
Setting = tuple[Any, ...]


@dataclass(frozen=True)
class Axis:
    """Params that vary together across a set (a `filters=none` run flips two at once)."""

    keys: tuple[str, ...]
    values: tuple[Setting, ...]
    reference: Setting  # the default configuration's value when the set has it

    @property
    def name(self) -> str:
        return " / ".join(self.keys)

    def of(self, exp: Experiment) -> Setting:
        return tuple(exp.params.get(key) for key in self.keys)

    @staticmethod
    def label(value: Setting) -> str:
        return " / ".join(str(part) for part in value)

    @property
    def numeric(self) -> bool:
        return len(self.keys) == 1 and all(
            isinstance(v[0], int | float) and not isinstance(v[0], bool) for v in self.values
        )


@dataclass
class Group:
    """The experiments of one configuration: the replicates (seeds) of one point."""

    setting: Setting
    experiments: list[Experiment]

    def values(self, metric: str) -> np.ndarray:
        found = (exp.output(metric) for exp in self.experiments)
        return np.array([v for v in found if v is not None], dtype=float)

    def mean(self, metric: str) -> float:
        values = self.values(metric)
        return float(values.mean()) if len(values) else math.nan

    def sampling_half_width(self, metric: str) -> float | None:
        """Half-width of the bootstrap interval of the group mean (seeds assumed independent)."""
        bounds = [interval(exp, metric) for exp in self.experiments]
        if not bounds or any(None in pair for pair in bounds):
            return None
        halves = [(high - low) / 2 for low, high in bounds]
        return math.sqrt(sum(h * h for h in halves)) / len(halves)

    def half_width(self, metric: str, noise: Noise) -> float | None:
        """Of the 95% interval of the group mean: from training noise where it was measured,
        else from the runs' sampling intervals, which understate it."""
        n = len(self.values(metric))
        if noise.sd is not None and n:
            return float(stats.t.ppf(0.975, noise.df) * noise.sd / math.sqrt(n))
        return self.sampling_half_width(metric)


def bound_names(metric: str) -> tuple[str, ...] | None:
    """The names `metric`'s 95% interval is recorded under, low then high; None for a name
    outside the schema. Whether the bounds were recorded is the reader's to look up."""
    name = MetricName.parse(metric)
    return tuple(map(str, name.bounds())) if name else None


def interval(exp: Experiment, metric: str) -> tuple[Any, Any]:
    """The bootstrap 95% interval `evaluate` recorded for `metric`; (None, None) if it has none."""
    bounds = bound_names(metric)
    return (exp.output(bounds[0]), exp.output(bounds[1])) if bounds else (None, None)


@dataclass(frozen=True)
class Noise:
    """Training noise: the spread between seeds, pooled over every group that has several."""

    sd: float | None
    df: int


@dataclass(frozen=True)
class Comparison:
    index: int  # of the one axis that differs
    axis: Axis
    reference: Group
    changed: Group
    delta: float  # changed mean - reference mean
    half_width: float | None  # of the simultaneous 95% interval of delta
    basis: str  # "seeds" or "sampling"

    @property
    def change(self) -> str:
        new = Axis.label(self.changed.setting[self.index])
        return f"{self.axis.name}: {Axis.label(self.axis.reference)} -> {new}"

    def context(self, axes: Sequence[Axis]) -> str:
        """The other axes both sides share, where they are off their reference ('' if none)."""
        shared = [
            f"{axis.name}={Axis.label(value)}"
            for i, (axis, value) in enumerate(zip(axes, self.reference.setting, strict=True))
            if i != self.index and value != axis.reference
        ]
        return ", ".join(shared)

    @property
    def interval(self) -> tuple[float, float] | None:
        """Of the delta, simultaneous 95%; None without any noise estimate."""
        if self.half_width is None:
            return None
        return self.delta - self.half_width, self.delta + self.half_width

    @property
    def exceeds(self) -> bool:
        """Whether the interval excludes zero: what the verdict says and the plots colour."""
        measured = self.half_width is not None and not math.isnan(self.delta)
        return measured and abs(self.delta) > self.half_width

    @property
    def same_training_set(self) -> bool:
        """Whether the change left the training data byte-for-byte as it was (its `dvc.lock`
        md5): a filter that removed nothing cannot have moved the output."""
        path = paths()["TRAINING_SET"]
        changed = {exp.outs.get(path) for exp in self.changed.experiments}
        reference = {exp.outs.get(path) for exp in self.reference.experiments}
        return None not in changed and changed <= reference

    @property
    def verdict(self) -> str:
        if self.half_width is None or math.isnan(self.delta):
            return "no noise estimate (one seed, no interval)"
        if self.basis == "seeds":
            return "exceeds training noise" if self.exceeds else "within training noise"
        if self.exceeds:
            return "exceeds sampling noise (training noise unmeasured: one seed)"
        return "within sampling noise"


def varied_axes(experiments: Sequence[Experiment], defaults: Mapping[str, Any]) -> list[Axis]:
    """The params that differ across `experiments`, merged where they always change together."""
    keys = sorted({key for exp in experiments for key in exp.params} - {REPLICATE})
    by_partition: dict[tuple[int, ...], list[str]] = {}
    for key in keys:
        codes: dict[str, int] = {}
        partition = tuple(
            codes.setdefault(repr(exp.params.get(key)), len(codes)) for exp in experiments
        )
        if len(codes) > 1:
            by_partition.setdefault(partition, []).append(key)
    axes = []
    for group in by_partition.values():
        values = sorted({tuple(exp.params.get(k) for k in group) for exp in experiments}, key=repr)
        if all(isinstance(v[0], int | float) for v in values):
            values.sort(key=lambda v: v[0])
        default = tuple(defaults.get(key) for key in group)
        axes.append(Axis(tuple(group), tuple(values), default if default in values else values[0]))
    return sorted(axes, key=lambda axis: axis.name)


def fixed_settings(
    experiments: Sequence[Experiment], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Params the whole set shares but the default configuration does not (e.g. the corruption)."""
    first = experiments[0].params if experiments else {}
    return {
        key: value
        for key, value in sorted(first.items())
        if key != REPLICATE
        and all(exp.params.get(key) == value for exp in experiments)
        and defaults.get(key) != value
    }


def group(experiments: Iterable[Experiment], axes: Sequence[Axis]) -> list[Group]:
    groups: dict[Setting, Group] = {}
    for exp in experiments:
        setting = tuple(axis.of(exp) for axis in axes)
        groups.setdefault(setting, Group(setting, [])).experiments.append(exp)
    return list(groups.values())


def distinct_runs(
    experiments: Sequence[Experiment],
) -> tuple[list[Experiment], list[tuple[Experiment, Experiment]]]:
    """Each run once: an experiment with the params and seed of an earlier one (a set's baseline
    that another set also ran) is the same computation, not another replicate."""
    first: dict[tuple, Experiment] = {}
    repeats = []
    for exp in experiments:
        original = first.setdefault(params_key(exp.params), exp)
        if original is not exp:
            repeats.append((original, exp))
    return list(first.values()), repeats


def configurations(runs: Sequence[Experiment]) -> list[Group]:
    """Runs grouped by everything but the seed: the groups training noise is pooled over."""
    configs: dict[tuple, Group] = {}
    for exp in runs:
        params = {k: v for k, v in exp.params.items() if k != REPLICATE}
        configs.setdefault(params_key(params), Group((), [])).experiments.append(exp)
    return list(configs.values())


def params_key(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted((key, repr(value)) for key, value in params.items()))


def pooled_noise(groups: Iterable[Group], metric: str) -> Noise:
    """Pooled within-group SD of `metric`; assumes every configuration is about as noisy."""
    squares, df = 0.0, 0
    for values in (g.values(metric) for g in groups):
        if len(values) > 1:
            squares += float(((values - values.mean()) ** 2).sum())
            df += len(values) - 1
    return Noise(math.sqrt(squares / df) if df else None, df)


def compare(
    groups: Sequence[Group], axes: Sequence[Axis], metric: str, noise: Noise
) -> list[Comparison]:
    """Each configuration against the one that differs only in one axis, set to its reference.

    The intervals are simultaneous (Bonferroni over the set's comparisons): a sweep makes many
    comparisons, and at 95% each, one in twenty differences of pure noise would be called real.
    """
    pairs = []
    for first, second in combinations(groups, 2):
        differ = [
            i for i, (a, b) in enumerate(zip(first.setting, second.setting, strict=True)) if a != b
        ]
        if len(differ) != 1:
            continue
        for reference, changed in ((first, second), (second, first)):
            if reference.setting[differ[0]] == axes[differ[0]].reference:
                pairs.append((differ[0], reference, changed))
    tail = 1 - 0.025 / max(len(pairs), 1)
    found = []
    for index, reference, changed in pairs:
        n_ref, n_changed = len(reference.values(metric)), len(changed.values(metric))
        if noise.sd is not None and n_ref and n_changed:
            spread = noise.sd * math.sqrt(1 / n_ref + 1 / n_changed)
            half, basis = float(stats.t.ppf(tail, noise.df) * spread), "seeds"
        else:
            halves = (reference.sampling_half_width(metric), changed.sampling_half_width(metric))
            widen = stats.norm.ppf(tail) / stats.norm.ppf(0.975)  # the bootstrap intervals are 95%
            half = None if None in halves else math.hypot(*halves) * widen
            basis = "sampling"
        delta = changed.mean(metric) - reference.mean(metric)
        found.append(Comparison(index, axes[index], reference, changed, delta, half, basis))
    return sorted(found, key=lambda c: (c.axis.name, repr(c.changed.setting)))
