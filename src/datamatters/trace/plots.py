"""PNG plots for the trace report: each output metric against each numeric knob, and the deltas.

They draw the report model's means, intervals and verdicts and decide none of their own; the
markdown only links the files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402

from datamatters.atomic import atomic_path  # noqa: E402
from datamatters.trace.compare import Axis  # noqa: E402
from datamatters.trace.model import Point, SetReport, TraceReport  # noqa: E402


@dataclass(frozen=True)
class Figure:
    path: Path
    caption: str  # what the report calls it


@dataclass
class Figures:
    """The PNGs written for a report, keyed by set and what they show."""

    deltas: dict[tuple[str, str], Figure] = field(default_factory=dict)  # (set, metric)
    against_axis: dict[tuple[str, str], Figure] = field(default_factory=dict)  # (set, axis)


def write_plots(report: TraceReport, out_dir: Path) -> Figures:
    """Each set's comparisons as bars, per verdict metric, and its outputs per numeric axis."""
    figures = Figures()
    for s in report.sets:
        for metric in s.verdicts:
            path, title = out_dir / f"{s.name}_deltas_{metric}.png", f"{s.name}: change in {metric}"
            deltas(path, title, s, metric)
            figures.deltas[s.name, metric] = Figure(path, title)
        for index in s.numeric_axes:
            axis = s.axes[index].name
            path = out_dir / f"{s.name}_{axis}.png"
            metric_vs_axis(path, s, index, report.outputs)
            figures.against_axis[s.name, axis] = Figure(path, f"{s.name}: metrics against {axis}")
    return figures


def metric_vs_axis(path: Path, s: SetReport, x_axis: int, metrics: Sequence[str]) -> None:
    """One panel per metric: a line per setting of the other axes, seeds as dots, 95% bars."""
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    figure, panels = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    lines: dict[tuple, list[Point]] = {}
    for point in s.points:
        others = tuple(v for i, v in enumerate(point.setting) if i != x_axis)
        lines.setdefault(others, []).append(point)
    other_axes = [axis for i, axis in enumerate(s.axes) if i != x_axis]
    for panel, metric in zip(panels.flat, metrics, strict=False):
        for others, members in sorted(lines.items(), key=lambda item: repr(item[0])):
            members = sorted(members, key=lambda p: p.setting[x_axis][0])
            xs = [p.setting[x_axis][0] for p in members]
            label = ", ".join(
                f"{a.name}={Axis.label(v)}" for a, v in zip(other_axes, others, strict=True)
            )
            means = [p.means[metric] for p in members]
            bars = [p.half_widths[metric] or 0.0 for p in members]
            drawn = panel.errorbar(xs, means, yerr=bars, marker="o", capsize=3, label=label or None)
            for x, p in zip(xs, members, strict=True):
                seeds = [float(e.value) for e in p.per_seed[metric] if e.value is not None]
                panel.scatter([x] * len(seeds), seeds, s=10, alpha=0.5, color=drawn[0].get_color())
        panel.set_title(metric, fontsize=9)
        panel.set_xlabel(s.axes[x_axis].name, fontsize=8)
        panel.grid(alpha=0.3)
    for panel in list(panels.flat)[len(metrics) :]:
        panel.axis("off")
    handles, labels = panels.flat[0].get_legend_handles_labels()
    if labels:
        figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 2), fontsize=8)
    title = f"{s.name}: output metrics against {s.axes[x_axis].name} (mean of seeds, 95% bars)"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.08 if labels else 0, 1, 0.96))
    _save(figure, path)


def deltas(path: Path, title: str, s: SetReport, metric: str) -> None:
    """A bar per comparison: how far the metric moved, with the 95% interval of that move."""
    comparisons = s.verdicts[metric]
    figure, panel = plt.subplots(figsize=(8, 1.0 + 0.5 * len(comparisons)))
    labels = [f"{c.change}\n{c.context(s.axes)}".rstrip() for c in comparisons]
    values = [c.delta for c in comparisons]
    errors = [c.half_width or 0.0 for c in comparisons]
    colors = ["tab:red" if c.exceeds else "tab:gray" for c in comparisons]
    panel.barh(range(len(values)), values, xerr=errors, color=colors, capsize=3)
    panel.set_yticks(range(len(values)), labels, fontsize=7)
    panel.axvline(0, color="black", linewidth=0.8)
    panel.invert_yaxis()
    panel.set_xlabel(f"change in {metric} (changed - reference); red: beyond the noise", fontsize=8)
    panel.set_title(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
