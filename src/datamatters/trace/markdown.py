"""`reports/trace.md` from the report model: presentation only, every number decided before.

Figures are linked by file name: they are written beside the report.
"""

from __future__ import annotations

from collections.abc import Sequence

from datamatters.metrics.names import MetricName
from datamatters.trace.columns import num, shown_in
from datamatters.trace.compare import REPLICATE, Axis, Comparison
from datamatters.trace.model import Estimate, Repeat, SetReport, TraceReport
from datamatters.trace.plots import Figure, Figures


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Cells as given: every table of the report is built here, so they cannot drift apart."""
    head, *body = (f"| {' | '.join(cells)} |" for cells in [headers, *rows])
    return "\n".join([head, "|" + "---|" * len(headers), *body])


def render(report: TraceReport, figures: Figures | None = None) -> str:
    """The whole report; without `figures` it links no plots."""
    figures = figures or Figures()
    lines = _header(report) + _repeats_lines(report.repeats)
    for s in report.sets:
        lines += _set_section(s, figures)
    lines += _lineage_section(report)
    return "\n".join(lines) + "\n"


def _header(report: TraceReport) -> list[str]:
    metrics, noise = report.metrics, report.noise
    command = ["datamatters trace", *report.set_names, *(f"--metric {m}" for m in metrics)]
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
    lines = [
        "# Trace: data quality to output quality",
        "",
        f"Written by `{' '.join(command)}` from {report.experiment_count} finished experiments "
        "(`dvc exp show`). Lower is better for FID and KID, higher for precision, recall, "
        "density, coverage and IS.",
        "",
        noise_line,
        "",
    ]
    floor = [f"`{m}` {num(report.floor[m], _digits(m))}" for m in metrics if m in report.floor]
    if floor:
        lines += [
            "Real data under the same protocol (`real_floor`: clean train-pool images measured "
            f"as a generator's samples are), the floor no model is expected to beat: "
            f"{', '.join(floor)}.",
            "",
        ]
    return lines


def _repeats_lines(repeats: Sequence[Repeat]) -> list[str]:
    if not repeats:
        return []
    lines = ["Runs that repeat another's params and seed (counted once in the noise estimate):", ""]
    for r in repeats:
        same = "identical checkpoint md5" if r.same_checkpoint else "**different checkpoint md5**"
        lines.append(f"- `{r.repeat}` repeats `{r.original}`: {same}.")
    return [*lines, ""]


def _set_section(s: SetReport, figures: Figures) -> list[str]:
    axes = ", ".join(
        f"`{a.name}` ({', '.join(Axis.label(v) for v in a.values)}; "
        f"reference {Axis.label(a.reference)})"
        for a in s.axes
    )
    fixed = ", ".join(f"`{k}={v}`" for k, v in s.fixed.items()) or "none"
    baselines = ", ".join(sorted({commit[:7] for commit in s.baselines}))
    lines = [
        f"## Set `{s.name}`: {len(s.runs)} experiments",
        "",
        f"- Varied: {axes or 'nothing but the seed'}; replicates: `{REPLICATE}`.",
        f"- Shared settings that differ from the defaults: {fixed}.",
        f"- Run on commit(s) {baselines}.",
        "",
        _points_table(s),
        "",
    ]
    for metric, comparisons in s.verdicts.items():
        lines += [*_comparisons_table(s, comparisons, metric), ""]
        lines += _figure(figures.deltas.get((s.name, metric)))
    for index in s.numeric_axes:
        lines += _figure(figures.against_axis.get((s.name, s.axes[index].name)))
    lines += _experiments_table(s)
    lines += _issues_table(s)
    return lines


def _figure(figure: Figure | None) -> list[str]:
    return [f"![{figure.caption}]({figure.path.name})", ""] if figure else []


def _points_table(s: SetReport) -> str:
    """One row per configuration: the mean over seeds, then each seed's value and interval."""
    metrics = s.point_metrics
    head = [*(a.name for a in s.axes), "seeds"]
    for metric in metrics:
        head += [f"mean {metric}", "per seed [95% sampling interval]"]
    rows = []
    for point in s.points:
        cells = [*(Axis.label(v) for v in point.setting), str(point.seeds)]
        for metric in metrics:
            per_seed = "; ".join(_estimate(e, metric) for e in point.per_seed[metric])
            cells += [num(point.means[metric], _digits(metric)), per_seed]
        rows.append(cells)
    return markdown_table(head, rows)


def _comparisons_table(s: SetReport, comparisons: Sequence[Comparison], metric: str) -> list[str]:
    head = ["change", "with", "training set", "seeds (ref, changed)", "delta"]
    head += ["simultaneous 95% interval", "verdict"]
    digits = _digits(metric)
    rows = [
        [
            c.change,
            c.context(s.axes) or "-",
            "identical" if c.same_training_set else "differs",
            f"{len(c.reference.experiments)}, {len(c.changed.experiments)}",
            num(c.delta, digits, sign=True),
            " to ".join(num(end, digits) for end in c.interval) if c.interval else "n/a",
            c.verdict,
        ]
        for c in comparisons
    ]
    return [
        f"#### Verdicts on `{metric}`",
        "",
        f"Each change against the reference configuration that differs from it in that one axis. "
        f"Delta is the changed mean minus the reference mean of `{metric}`; in an ablation "
        "(one filter off at a time) it is what that filter was buying. *With* names the other "
        "axes where they are not at their reference value. *Training set* says whether the "
        "change altered the training data at all (its `dvc.lock` md5).",
        "",
        markdown_table(head, rows),
    ]


def _experiments_table(s: SetReport) -> list[str]:
    columns = shown_in("experiments")
    head = ["experiment", *(a.name for a in s.axes), "seed", *(c.header for c in columns)]
    head += ["training set md5", "checkpoint md5", *(f"{m} [95%]" for m in s.interval_metrics)]
    head += ["precision / recall"]
    rows = [
        [
            run.name,
            *(Axis.label(value) for value in run.setting),
            str(run.seed),
            *(c.cell(run.measured) for c in columns),
            f"`{(run.training_set or '-')[:12]}`",
            f"`{(run.checkpoint or '-')[:12]}`",
            *(_estimate(run.outputs[m], m) for m in s.interval_metrics),
            f"{num(run.precision, 3)} / {num(run.recall, 3)}",
        ]
        for run in s.runs
    ]
    return [
        "### Experiments",
        "",
        "Data-quality measurements come from each data stage's metrics file; the md5s are the "
        "experiment's `dvc.lock` hashes (`datamatters used-by <md5>` finds every experiment "
        "that used one).",
        "",
        markdown_table(head, rows),
        "",
    ]


def _issues_table(s: SetReport) -> list[str]:
    if not s.checks:
        return []
    columns = shown_in("issues")
    rows = [
        [
            run.name,
            *(num(run.flagged.get(check)) for check in s.checks),
            *(c.cell(run.measured) for c in columns),
        ]
        for run in s.runs
    ]
    head = ["experiment", *s.checks, *(c.header for c in columns)]
    return ["### Images flagged per check", "", markdown_table(head, rows), ""]


def _lineage_section(report: TraceReport) -> list[str]:
    example = report.sets[0].runs[0]
    training_set = example.training_set or "<md5>"
    return [
        "## Lineage",
        "",
        f"- Which data produced an experiment: `datamatters lineage {example.name}` lists its "
        "data versions and writes the images its filters removed, with the reason for each.",
        f"- Which experiments used a data version: `datamatters used-by {training_set[:12]}`.",
        f"- Re-run one: `dvc exp apply {example.name} && dvc repro`; compare two: "
        f"`dvc plots diff {example.name} <other>` shows their sample grids and training curves.",
    ]


def _estimate(estimate: Estimate, metric: str) -> str:
    digits = _digits(metric)
    if estimate.low is None or estimate.high is None:
        return num(estimate.value, digits)
    low, high = num(estimate.low, digits), num(estimate.high, digits)
    return f"{num(estimate.value, digits)} [{low}, {high}]"


def _digits(metric: str) -> int:
    """FID and KID live in the tens; fractions (precision, coverage) need three decimals."""
    name = MetricName.parse(metric)
    return 1 if name is not None and name.statistic in ("fid", "kid") else 3
