"""What the trace report says, as data: computed once, then drawn and written by others.

Every number and verdict of `reports/trace.md` is decided here, so the markdown and the plots
only present it, and tests check the findings without parsing text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datamatters.metrics.names import MetricName
from datamatters.trace.columns import measure
from datamatters.trace.compare import (
    REPLICATE,
    Axis,
    Comparison,
    Group,
    Noise,
    Setting,
    compare,
    configurations,
    distinct_runs,
    fixed_settings,
    group,
    interval,
    pooled_noise,
    varied_axes,
)
from datamatters.trace.experiments import Experiment, TraceError, paths, resolve_sets


@dataclass(frozen=True)
class Estimate:
    """One run's value of a metric, with the bootstrap 95% interval when evaluate recorded one."""

    value: Any
    low: Any = None
    high: Any = None

    @staticmethod
    def of(exp: Experiment, metric: str) -> Estimate:
        return Estimate(exp.output(metric), *interval(exp, metric))


@dataclass(frozen=True)
class Point:
    """One configuration of a set: its mean over seeds and each seed's own estimate, per output."""

    setting: Setting
    seeds: int
    means: dict[str, float]  # NaN where no seed recorded the metric
    half_widths: dict[str, float | None]  # of the 95% interval of each mean
    per_seed: dict[str, list[Estimate]]


@dataclass(frozen=True)
class Run:
    """One experiment: its knobs, what the data stages measured, its lineage hashes, its outputs."""

    name: str
    setting: Setting  # its value of each of the set's axes
    seed: Any
    measured: dict[str, Any]  # the column catalogue's values, by `<stage>.<key>`
    training_set: str | None  # md5s from dvc.lock
    checkpoint: str | None
    outputs: dict[str, Estimate]  # the set's metrics that have intervals
    precision: Any  # of the generated samples, on the lead metric's features and sample count
    recall: Any
    flagged: dict[str, Any]  # images each quality check flagged


@dataclass(frozen=True)
class Repeat:
    """A run with another's params and seed: the same computation, so a determinism check."""

    original: str
    repeat: str
    same_checkpoint: bool


@dataclass(frozen=True)
class SetReport:
    """One set: what it varies, its configurations, the verdicts on them, one row per run."""

    name: str
    axes: list[Axis]
    fixed: dict[str, Any]  # settings the set shares that differ from the defaults
    baselines: list[str]  # the commits its experiments ran on
    interval_metrics: list[str]  # the lead metric, then every output that has intervals
    point_metrics: list[str]  # the interval metrics, then the other verdict metrics
    points: list[Point]  # ordered by setting, with every output metric
    verdicts: dict[str, list[Comparison]]  # per verdict metric that has any comparison
    runs: list[Run]
    checks: list[str]  # the quality checks with flagged counts

    @property
    def numeric_axes(self) -> list[int]:
        """The axes a metric can be drawn against."""
        return [index for index, axis in enumerate(self.axes) if axis.numeric]


@dataclass(frozen=True)
class TraceReport:
    """Every set asked for, with the noise estimate they share."""

    set_names: list[str]  # as asked for
    metrics: list[str]  # the metrics verdicts are given on; the first leads every table
    outputs: list[str]  # every output metric of the experiments
    experiment_count: int
    noise: dict[str, Noise]  # training noise per output metric, pooled over all sets
    floor: dict[str, float]  # what real images score under the same protocol (`real_floor`)
    repeats: list[Repeat]
    sets: list[SetReport]


def build_report(
    experiments: Sequence[Experiment],
    set_names: Sequence[str],
    defaults: Mapping[str, Any],
    metrics: Sequence[str] = (),
) -> TraceReport:
    """The report on the named sets, their axes measured against `defaults`.

    Verdicts are given for each of `metrics` (default: the judge FID, at whatever sample count
    the runs used); the first is the one the tables lead with.
    """
    resolved = resolve_sets(experiments, set_names)
    if not resolved:
        raise TraceError(
            "no finished experiment here to trace: run some with `dvc exp run` "
            "(`dvc exp show` lists them)"
        )
    members = [exp for _, exps in resolved for exp in exps]
    outputs = output_metrics(members)
    metrics = _verdict_metrics(metrics, outputs)
    runs, repeats = distinct_runs(members)
    noise = {m: pooled_noise(configurations(runs), m) for m in outputs}
    checkpoint = paths()["CHECKPOINT"]
    return TraceReport(
        set_names=list(set_names),
        metrics=metrics,
        outputs=outputs,
        experiment_count=len(members),
        noise=noise,
        floor=real_floor(members, outputs),
        repeats=[
            Repeat(o.name, r.name, o.outs.get(checkpoint) == r.outs.get(checkpoint))
            for o, r in repeats
        ],
        sets=[
            _set_report(name, exps, defaults, metrics, outputs, noise) for name, exps in resolved
        ],
    )


def real_floor(experiments: Iterable[Experiment], metrics: Sequence[str]) -> dict[str, float]:
    """Each output metric's real-data floor, where every experiment recorded the same one.

    The floor depends on the source and the split alone, so experiments of one project share it;
    one that differs (another data source) would make a single floor misleading, so it is left out.
    """
    found = {m: {exp.metric(paths()["REAL_FLOOR"], m) for exp in experiments} for m in metrics}
    return {m: next(iter(v)) for m, v in found.items() if len(v) == 1 and None not in v}


def output_metrics(experiments: Iterable[Experiment]) -> list[str]:
    """The scores evaluate recorded, sorted; bounds and spreads are read beside their score."""
    recorded = [exp.metrics.get(paths()["EVALUATE"], {}) for exp in experiments]
    numbers = {k for values in recorded for k, v in values.items() if isinstance(v, int | float)}
    return sorted(k for k in numbers if (name := MetricName.parse(k)) and name.is_score)


def _verdict_metrics(asked: Sequence[str], outputs: Sequence[str]) -> list[str]:
    judge_fid = [m for m in outputs if _is_plain_judge_fid(MetricName.parse(m))]
    metrics = list(asked) or judge_fid[:1] or list(outputs[:1])
    evaluate = paths()["EVALUATE"]
    if not metrics:
        raise TraceError(f"none of these experiments has an output metric in {evaluate}")
    for metric in metrics:
        if metric not in outputs:
            raise TraceError(
                f"metric '{metric}' is in none of these experiments' {evaluate}; "
                f"pick one of: {', '.join(outputs)}"
            )
    return metrics


def _is_plain_judge_fid(name: MetricName | None) -> bool:
    """The default verdict metric: FID on the judge's features over all classes."""
    return name is not None and (name.statistic, name.features, name.detail) == ("fid", "judge", "")


def _set_report(
    name: str,
    members: list[Experiment],
    defaults: Mapping[str, Any],
    metrics: Sequence[str],
    outputs: Sequence[str],
    noise: Mapping[str, Noise],
) -> SetReport:
    axes = varied_axes(members, defaults)
    groups = group(members, axes)
    lead = metrics[0]
    with_interval = [
        m for m in outputs if m != lead and any(interval(exp, m)[0] is not None for exp in members)
    ]
    interval_metrics = [lead, *with_interval]
    point_metrics = [*interval_metrics, *(m for m in metrics if m not in interval_metrics)]
    verdicts = {m: found for m in metrics if (found := compare(groups, axes, m, noise[m]))}
    runs = [_run(exp, axes, lead, interval_metrics) for exp in members]
    return SetReport(
        name=name,
        axes=axes,
        fixed=fixed_settings(members, defaults),
        baselines=sorted({exp.baseline for exp in members}),
        interval_metrics=interval_metrics,
        point_metrics=point_metrics,
        points=[_point(g, outputs, noise) for g in sorted(groups, key=lambda g: repr(g.setting))],
        verdicts=verdicts,
        runs=runs,
        checks=sorted({check for run in runs for check in run.flagged}),
    )


def _point(g: Group, metrics: Sequence[str], noise: Mapping[str, Noise]) -> Point:
    means = {m: g.mean(m) for m in metrics}
    half_widths = {m: g.half_width(m, noise[m]) for m in metrics}
    per_seed = {m: [Estimate.of(exp, m) for exp in g.experiments] for m in metrics}
    return Point(g.setting, len(g.experiments), means, half_widths, per_seed)


def _run(exp: Experiment, axes: Sequence[Axis], lead: str, metrics: Sequence[str]) -> Run:
    quality = exp.metrics.get(paths()["QUALITY"], {})
    flagged = {k.removesuffix("_flagged"): v for k, v in quality.items() if k.endswith("_flagged")}
    return Run(
        name=exp.name,
        setting=tuple(axis.of(exp) for axis in axes),
        seed=exp.params.get(REPLICATE),
        measured=measure(exp),
        training_set=exp.outs.get(paths()["TRAINING_SET"]),
        checkpoint=exp.outs.get(paths()["CHECKPOINT"]),
        outputs={m: Estimate.of(exp, m) for m in metrics},
        precision=_beside(exp, lead, "precision"),
        recall=_beside(exp, lead, "recall"),
        flagged=flagged,
    )


def _beside(exp: Experiment, metric: str, statistic: str) -> Any:
    """`statistic` on the features and sample count of `metric`: the precision beside an FID."""
    name = MetricName.parse(metric)
    return exp.output(str(name.sibling(statistic))) if name else None
