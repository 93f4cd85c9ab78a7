"""`reports/trace.md`: each experiment's data knobs, data-quality measurements, lineage hashes and
output metrics, and which differences between configurations exceed the noise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamatters.atomic import write_text
from datamatters.trace import plots
from datamatters.trace.compare import (
    REPLICATE,
    Axis,
    Comparison,
    Group,
    Noise,
    compare,
    configurations,
    distinct_runs,
    fixed_settings,
    group,
    pooled_noise,
    varied_axes,
)
from datamatters.trace.experiments import (
    AUGMENT,
    CHECKPOINT,
    EVALUATE,
    LABELING,
    QUALITY,
    TRAINING_SET,
    Experiment,
    TraceError,
    resolve_sets,
)

SKIPPED_METRICS = re.compile(r"(_ci95_low|_ci95_high|_std|_images)$|\.")


@dataclass
class TracedSet:
    name: str
    experiments: list[Experiment]
    axes: list[Axis]
    groups: list[Group]
    fixed: dict[str, Any]


def write_trace(
    experiments: Sequence[Experiment],
    set_names: Sequence[str],
    defaults: Mapping[str, Any],
    out_dir: Path,
    metrics: Sequence[str] = (),
) -> Path:
    """Write `out_dir/trace.md` and its PNGs for the named sets; returns the report's path.

    Verdicts are given for each of `metrics` (default: the judge FID, at whatever sample count
    the runs used); the first is the one the tables lead with.
    """
    traced = [
        _trace_set(name, members, defaults)
        for name, members in resolve_sets(experiments, set_names)
    ]
    if not traced:
        raise TraceError(
            "no finished experiment here to trace: run some with `dvc exp run` "
            "(`dvc exp show` lists them)"
        )
    outputs = sorted({m for t in traced for exp in t.experiments for m in _outputs(exp)})
    judge_fid = [m for m in outputs if m.startswith("fid_judge_") and "class" not in m]
    metrics = list(metrics) or judge_fid[:1] or outputs[:1]
    for metric in metrics:
        if metric not in outputs:
            raise TraceError(
                f"metric '{metric}' is in none of these experiments' {EVALUATE}; "
                f"pick one of: {', '.join(outputs)}"
            )
    members = [exp for t in traced for exp in t.experiments]
    runs, repeats = distinct_runs(members)
    noise = {m: pooled_noise(configurations(runs), m) for m in outputs}
    lines = _header(traced, set_names, metrics, noise) + _repeats_lines(repeats)
    for t in traced:
        lines += _set_section(t, metrics, outputs, noise, out_dir)
    lines += _lineage_section(traced)
    report = out_dir / "trace.md"
    write_text(report, "\n".join(lines) + "\n")
    return report


def _trace_set(name: str, members: list[Experiment], defaults: Mapping[str, Any]) -> TracedSet:
    axes = varied_axes(members, defaults)
    return TracedSet(name, members, axes, group(members, axes), fixed_settings(members, defaults))


def _repeats_lines(repeats: Sequence[tuple[Experiment, Experiment]]) -> list[str]:
    """Runs that repeat another exactly are a free determinism check: same checkpoint md5?"""
    if not repeats:
        return []
    lines = ["Runs that repeat another's params and seed (counted once in the noise estimate):", ""]
    for original, repeat in repeats:
        same = original.outs.get(CHECKPOINT) == repeat.outs.get(CHECKPOINT)
        verdict = "identical checkpoint md5" if same else "**different checkpoint md5**"
        lines.append(f"- `{repeat.name}` repeats `{original.name}`: {verdict}.")
    return [*lines, ""]


def _outputs(exp: Experiment) -> list[str]:
    return [
        key
        for key, value in exp.metrics.get(EVALUATE, {}).items()
        if isinstance(value, int | float) and not SKIPPED_METRICS.search(key)
    ]


def _header(
    traced: Sequence[TracedSet],
    set_names: Sequence[str],
    metrics: Sequence[str],
    noise: Mapping[str, Noise],
) -> list[str]:
    count = sum(len(t.experiments) for t in traced)
    command = " ".join(["datamatters trace", *set_names, *(f"--metric {m}" for m in metrics)])
    measured = [f"`{m}` {noise[m].sd:.4g}" for m in metrics if noise[m].sd is not None]
    if not measured:
        noise_line = (
            "No configuration has several seeds, so training noise is unmeasured: verdicts use "
            "the bootstrap intervals of the generated samples, which understate it."
        )
    else:
        noise_line = (
            "Training noise, the standard deviation between seeds of one configuration pooled "
            f"over every configuration with several ({noise[metrics[0]].df} degrees of freedom): "
            f"{', '.join(measured)}. A difference exceeds it when its interval, "
            "t x SD x sqrt(1/n1 + 1/n2), excludes zero; t is taken at 1 - 0.025/m for a set of m "
            "comparisons (Bonferroni), so the intervals hold at 95% for the whole set at once."
        )
    return [
        "# Trace: data quality to output quality",
        "",
        f"Written by `{command}` from {count} finished experiments (`dvc exp show`). Lower is "
        "better for FID and KID, higher for precision, recall, density, coverage and IS.",
        "",
        noise_line,
        "",
    ]


def _set_section(
    t: TracedSet,
    metrics: Sequence[str],
    outputs: Sequence[str],
    noise: Mapping[str, Noise],
    out_dir: Path,
) -> list[str]:
    metric = metrics[0]
    axes = ", ".join(
        f"`{a.name}` ({', '.join(Axis.label(v) for v in a.values)}; "
        f"reference {Axis.label(a.reference)})"
        for a in t.axes
    )
    fixed = ", ".join(f"`{k}={v}`" for k, v in t.fixed.items()) or "none"
    interval_metrics = [metric] + [
        m
        for m in outputs
        if m != metric
        and any(e.metric(EVALUATE, f"{m}_ci95_low") is not None for e in t.experiments)
    ]
    baselines = ", ".join(sorted({exp.baseline[:7] for exp in t.experiments}))
    lines = [
        f"## Set `{t.name}`: {len(t.experiments)} experiments",
        "",
        f"- Varied: {axes or 'nothing but the seed'}; replicates: `{REPLICATE}`.",
        f"- Shared settings that differ from the defaults: {fixed}.",
        f"- Run on commit(s) {baselines}.",
        "",
        *_points_table(t, [*interval_metrics, *(m for m in metrics if m not in interval_metrics)]),
        "",
    ]
    for verdict_metric in metrics:
        comparisons = compare(t.groups, t.axes, verdict_metric, noise[verdict_metric])
        if comparisons:
            lines += _comparisons_table(t, comparisons, verdict_metric)
            png = f"{t.name}_deltas_{verdict_metric}.png"
            title = f"{t.name}: change in {verdict_metric}"
            plots.deltas(out_dir / png, title, comparisons, t.axes, verdict_metric)
            lines += ["", f"![{title}]({png})", ""]
    for index, axis in enumerate(t.axes):
        if axis.numeric:
            png = f"{t.name}_{axis.name}.png"
            title = f"{t.name}: output metrics against {axis.name} (mean of seeds, 95% bars)"
            plots.metric_vs_axis(out_dir / png, title, t.groups, t.axes, index, outputs, noise)
            lines += [f"![{t.name}: metrics against {axis.name}]({png})", ""]
    lines += _experiments_table(t, metric, interval_metrics)
    lines += _issues_table(t)
    return lines


def _points_table(t: TracedSet, metrics: Sequence[str]) -> list[str]:
    """One row per configuration: the mean over seeds, then each seed's value and interval."""
    head = [*(a.name for a in t.axes), "seeds"]
    for metric in metrics:
        head += [f"mean {metric}", "per seed [95% sampling interval]"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in sorted(t.groups, key=lambda g: repr(g.setting)):
        cells = [*(Axis.label(v) for v in g.setting), str(len(g.experiments))]
        for metric in metrics:
            per_seed = "; ".join(_with_interval(exp, metric) for exp in g.experiments)
            cells += [_num(g.mean(metric), _digits(metric)), per_seed]
        rows.append(f"| {' | '.join(cells)} |")
    return rows


def _comparisons_table(t: TracedSet, comparisons: Sequence[Comparison], metric: str) -> list[str]:
    rows = [
        f"#### Verdicts on `{metric}`",
        "",
        f"Each change against the reference configuration that differs from it in that one axis. "
        f"Delta is the changed mean minus the reference mean of `{metric}`; in an ablation "
        "(one filter off at a time) it is what that filter was buying. *With* names the other "
        "axes where they are not at their reference value. *Training set* says whether the "
        "change altered the training data at all (its `dvc.lock` md5).",
        "",
        "| change | with | training set | seeds (ref, changed) | delta "
        "| simultaneous 95% interval | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    digits = _digits(metric)
    for c in comparisons:
        interval = (
            f"{_num(c.delta - c.half_width, digits)} to {_num(c.delta + c.half_width, digits)}"
            if c.half_width is not None
            else "n/a"
        )
        seeds = f"{len(c.reference.experiments)}, {len(c.changed.experiments)}"
        delta = _num(c.delta, digits, sign=True)
        rows.append(
            f"| {c.change} | {c.context(t.axes) or '-'} | {_training_set_change(c)} | {seeds} "
            f"| {delta} | {interval} | {c.verdict} |"
        )
    return rows


def _training_set_change(c: Comparison) -> str:
    """'identical' when the change left the training data byte-for-byte as it was."""
    changed = {exp.outs.get(TRAINING_SET) for exp in c.changed.experiments}
    reference = {exp.outs.get(TRAINING_SET) for exp in c.reference.experiments}
    return "identical" if None not in changed and changed <= reference else "differs"


def _experiments_table(t: TracedSet, metric: str, interval_metrics: Sequence[str]) -> list[str]:
    knobs = [a.name for a in t.axes]
    head = [
        "experiment",
        *knobs,
        "seed",
        "kept",
        "label issues dropped",
        "noise rate est.",
        "quality P / R",
        "training images",
        "training set md5",
        "checkpoint md5",
        *(f"{m} [95%]" for m in interval_metrics),
        "precision / recall",
    ]
    rows = [
        "### Experiments",
        "",
        "Data-quality measurements come from each data stage's metrics file; the md5s are the "
        "experiment's `dvc.lock` hashes (`datamatters used-by <md5>` finds every experiment "
        "that used one).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    kind = metric.split("_", 1)[1] if "_" in metric else metric
    for exp in t.experiments:
        cells = [
            exp.name,
            *(Axis.label(a.of(exp)) for a in t.axes),
            str(exp.params.get(REPLICATE)),
            _percent(exp.metric(QUALITY, "kept_fraction")),
            _num(exp.metric(LABELING, "dropped_for_label_issue")),
            _num(exp.metric(LABELING, "estimated_noise_rate"), digits=3),
            f"{_num(exp.metric(QUALITY, 'precision'), 3)} / "
            f"{_num(exp.metric(QUALITY, 'recall'), 3)}",
            _num(exp.metric(AUGMENT, "training_images")),
            f"`{exp.outs.get(TRAINING_SET, '-')[:12]}`",
            f"`{exp.outs.get(CHECKPOINT, '-')[:12]}`",
            *(_with_interval(exp, m) for m in interval_metrics),
            f"{_num(exp.metric(EVALUATE, f'precision_{kind}'), 3)} / "
            f"{_num(exp.metric(EVALUATE, f'recall_{kind}'), 3)}",
        ]
        rows.append(f"| {' | '.join(cells)} |")
    return [*rows, ""]


def _issues_table(t: TracedSet) -> list[str]:
    checks = sorted(
        {
            key.removesuffix("_flagged")
            for exp in t.experiments
            for key in exp.metrics.get(QUALITY, {})
            if key.endswith("_flagged")
        }
    )
    if not checks:
        return []
    rows = [
        "### Images flagged per check",
        "",
        "| experiment | " + " | ".join(checks) + " | label issues |",
        "|" + "---|" * (len(checks) + 2),
    ]
    for exp in t.experiments:
        counts = [_num(exp.metric(QUALITY, f"{check}_flagged")) for check in checks]
        rows.append(
            f"| {exp.name} | {' | '.join(counts)} | {_num(exp.metric(LABELING, 'label_issues'))} |"
        )
    return [*rows, ""]


def _lineage_section(traced: Sequence[TracedSet]) -> list[str]:
    example = traced[0].experiments[0]
    training_set = example.outs.get(TRAINING_SET, "<md5>")
    return [
        "## Lineage",
        "",
        f"- Which data produced an experiment: `datamatters lineage {example.name}` lists its "
        "data versions and writes the images its filters removed, with the reason for each.",
        f"- Which experiments used a data version: `datamatters used-by {training_set[:12]}`.",
        f"- Re-run one: `dvc exp apply {example.name} && dvc repro`; compare two: "
        f"`dvc plots diff {example.name} <other>` shows their sample grids and training curves.",
    ]


def _with_interval(exp: Experiment, metric: str) -> str:
    value = exp.metric(EVALUATE, metric)
    low, high = (exp.metric(EVALUATE, f"{metric}_ci95_{side}") for side in ("low", "high"))
    digits = _digits(metric)
    if low is None or high is None:
        return _num(value, digits)
    return f"{_num(value, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _num(value: Any, digits: int = 1, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _digits(metric: str) -> int:
    """FID and KID live in the tens; fractions (precision, coverage) need three decimals."""
    return 1 if metric.startswith(("fid_", "kid_")) else 3


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
