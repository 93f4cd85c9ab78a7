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
    EVALUATE,
    REPLICATE,
    Axis,
    Comparison,
    Group,
    Noise,
    compare,
    fixed_settings,
    group,
    pooled_noise,
    varied_axes,
)
from datamatters.trace.experiments import Experiment, TraceError, select

TRAINING_SET, CHECKPOINT = "data/augmented", "models/generator.pt"
QUALITY, LABELING, AUGMENT = "metrics/quality.json", "metrics/labeling.json", "metrics/augment.json"
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
    metric: str,
) -> Path:
    """Write `out_dir/trace.md` and its PNGs for the named sets; returns the report's path."""
    traced = [_trace_set(experiments, name, defaults) for name in set_names]
    outputs = sorted({m for t in traced for exp in t.experiments for m in _outputs(exp)})
    if metric not in outputs:
        raise TraceError(
            f"metric '{metric}' is in none of these experiments' {EVALUATE}; "
            f"pick one of: {', '.join(outputs)}"
        )
    noise = {m: pooled_noise([g for t in traced for g in t.groups], m) for m in outputs}
    lines = _header(traced, metric, noise[metric])
    for t in traced:
        lines += _set_section(t, metric, outputs, noise, out_dir)
    lines += _lineage_section(traced)
    report = out_dir / "trace.md"
    write_text(report, "\n".join(lines) + "\n")
    return report


def _trace_set(
    experiments: Sequence[Experiment], name: str, defaults: Mapping[str, Any]
) -> TracedSet:
    members = select(experiments, name)
    if not members:
        known = sorted({exp.name.rsplit("-", 1)[0] for exp in experiments if "-" in exp.name})
        raise TraceError(
            f"no finished experiment is named '{name}-...'; sets here: {', '.join(known) or 'none'}"
            f". Run one with `dvc exp run --queue -n {name} -S ...` and `dvc queue start`"
        )
    axes = varied_axes(members, defaults)
    return TracedSet(name, members, axes, group(members, axes), fixed_settings(members, defaults))


def _outputs(exp: Experiment) -> list[str]:
    return [
        key
        for key, value in exp.metrics.get(EVALUATE, {}).items()
        if isinstance(value, int | float) and not SKIPPED_METRICS.search(key)
    ]


def _header(traced: Sequence[TracedSet], metric: str, noise: Noise) -> list[str]:
    count = sum(len(t.experiments) for t in traced)
    names = " ".join(t.name for t in traced)
    if noise.sd is None:
        noise_line = (
            "No configuration has several seeds, so training noise is unmeasured: verdicts use "
            "the bootstrap intervals of the generated samples, which understate it."
        )
    else:
        noise_line = (
            f"Training noise in `{metric}`: the spread between seeds of one configuration, pooled "
            f"over every configuration with several, is SD {noise.sd:.2f} ({noise.df} degrees of "
            "freedom). A difference exceeds it when its 95% interval, "
            "t(df) x SD x sqrt(1/n1 + 1/n2), excludes zero."
        )
    return [
        "# Trace: data quality to output quality",
        "",
        f"Written by `datamatters trace {names}` from {count} finished experiments "
        "(`dvc exp show`). Primary metric: "
        f"`{metric}` (lower is better for FID and KID).",
        "",
        noise_line,
        "",
    ]


def _set_section(
    t: TracedSet, metric: str, outputs: Sequence[str], noise: Mapping[str, Noise], out_dir: Path
) -> list[str]:
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
        *_points_table(t, interval_metrics),
        "",
    ]
    comparisons = compare(t.groups, t.axes, metric, noise[metric])
    if comparisons:
        lines += _comparisons_table(t, comparisons, metric)
        png = f"{t.name}_deltas.png"
        plots.deltas(out_dir / png, f"{t.name}: change in {metric}", comparisons, t.axes, metric)
        lines += ["", f"![{t.name}: changes in {metric}]({png})", ""]
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
            cells += [_num(g.mean(metric)), per_seed]
        rows.append(f"| {' | '.join(cells)} |")
    return rows


def _comparisons_table(t: TracedSet, comparisons: Sequence[Comparison], metric: str) -> list[str]:
    rows = [
        f"Each change against the reference configuration that differs from it in that one axis. "
        f"Delta is the changed mean minus the reference mean of `{metric}`; in an ablation "
        "(one filter off at a time) it is what that filter was buying. *With* names the other "
        "axes where they are not at their reference value.",
        "",
        "| change | with | seeds (ref, changed) | delta | 95% interval | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        interval = (
            f"{_num(c.delta - c.half_width)} to {_num(c.delta + c.half_width)}"
            if c.half_width is not None
            else "n/a"
        )
        seeds = f"{len(c.reference.experiments)}, {len(c.changed.experiments)}"
        rows.append(
            f"| {c.change} | {c.context(t.axes) or '-'} | {seeds} | {_num(c.delta, sign=True)} "
            f"| {interval} | {c.verdict} |"
        )
    return rows


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
    if low is None or high is None:
        return _num(value)
    return f"{_num(value)} [{_num(low)}, {_num(high)}]"


def _num(value: Any, digits: int = 1, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
