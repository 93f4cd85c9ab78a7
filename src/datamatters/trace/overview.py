"""One screen to compare experiments on: the knobs that differ and the headline output metrics.

`dvc exp show` lists every stage's every number (per-class counts, thresholds) under bare keys
(`kept`, `precision`), dozens of columns that collapse to `…` in a wide terminal. This table
reads the same records (`dvc exp show --json`) and shows, per experiment, only the params whose
values differ and a short list of metrics, each named `<stage>.<key>` after the file it comes
from; `--all` shows every metric under the same names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from datamatters.metrics.names import MetricName
from datamatters.pipeline import producer_of
from datamatters.trace.columns import headline
from datamatters.trace.compare import bound_names
from datamatters.trace.experiments import Experiment

# Output quality at the default sample counts, then what real images score there (the floor):
# what a data-quality comparison reads after what the data stages kept. An FID is shown with its
# bootstrap interval, `74.7 [70.9, 81.5]`.
OUTPUT_HEADLINE = (
    MetricName("fid", "judge", 1000),
    MetricName("fid", "inception", 500),
    MetricName("precision", "judge", 1000),
    MetricName("recall", "judge", 1000),
)
# Params that change on every run without being a knob.
NOT_KNOBS = ("hydra.",)


def stage_metrics(exp: Experiment) -> dict[str, Any]:
    """Every scalar metric of an experiment as `<stage>.<key>`, after the stage that writes the
    file (the file's stem for one that no stage in dvc.yaml writes any more)."""
    named = {}
    for path, values in exp.metrics.items():
        stage = producer_of(path) or PurePosixPath(path).stem
        for key, value in values.items():
            if isinstance(value, int | float | str | bool) or value is None:
                named[f"{stage}.{key}"] = value
    return named


def overview_rows(
    experiments: Sequence[Experiment], every_metric: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: experiment, the params that differ, then the metrics."""
    metrics = [stage_metrics(exp) for exp in experiments]
    present = sorted({k for m in metrics for k in m})
    metric_names = present if every_metric else [k for k in _headline() if k in present]
    keys = sorted({k for exp in experiments for k in exp.params if not k.startswith(NOT_KNOBS)})
    params = [k for k in keys if len({repr(exp.params.get(k)) for exp in experiments}) > 1]
    header = ["experiment", *params, *metric_names]
    rows = [
        [
            exp.name,
            *(_cell(exp.params.get(k)) for k in params),
            *(_metric_cell(m, k, with_interval=not every_metric) for k in metric_names),
        ]
        for exp, m in zip(experiments, metrics, strict=True)
    ]
    return header, rows


def render(header: list[str], rows: list[list[str]]) -> str:
    """Aligned columns under a two-line header: the stage (or params section), then the key.

    Splitting `evaluate.fid_judge_1k` over two lines keeps each column as narrow as its values.
    """
    groups = [name.split(".", 1)[0] if "." in name else "" for name in header]
    keys = [name.split(".", 1)[-1] for name in header]
    table = [groups, keys, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for row in table:
        cells = [
            c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_csv(header: list[str], rows: list[list[str]]) -> str:
    """Full names in one header row, for a spreadsheet."""
    return "\n".join(",".join(f'"{c}"' if "," in c else c for c in row) for row in [header, *rows])


def _headline() -> list[str]:
    """The column catalogue's headline measurements, then the output headline."""
    outputs = [f"evaluate.{name}" for name in OUTPUT_HEADLINE]
    return [*headline(), *outputs, *(f"real_floor.{name}" for name in OUTPUT_HEADLINE[:2])]


def _metric_cell(metrics: dict[str, Any], key: str, with_interval: bool) -> str:
    """The value, with the bounds recorded beside `<stage>.<metric>` when it has an interval."""
    stage, _, metric = key.partition(".")
    bounds = bound_names(metric) if with_interval else None
    low, high = (metrics.get(f"{stage}.{b}") for b in bounds) if bounds else (None, None)
    if low is None or high is None:
        return _cell(metrics.get(key))
    return f"{_cell(metrics.get(key))} [{_cell(low)}, {_cell(high)}]"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _numeric(cell: str) -> bool:
    try:
        float(cell.split(" [")[0])
    except ValueError:
        return False
    return True
