"""The data-stage measurements the trace shows: one catalogue for the report and `datamatters exps`.

Adding a measurement is one `Column` here: the report model reads it into each run, the
markdown tables show it under its header, and `datamatters exps` lists it when it is a headline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from datamatters.pipeline import metrics_file
from datamatters.trace.experiments import Experiment


def num(value: Any, digits: int = 1, sign: bool = False) -> str:
    """Counts as they are, fractions to `digits` decimals, '-' where nothing was recorded."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@dataclass(frozen=True)
class Column:
    """Keys of a stage's metrics file, shown in one cell (`0.910 / 0.821` for a pair)."""

    stage: str  # its metrics file is the one dvc.yaml declares for this stage
    keys: tuple[str, ...]
    header: str
    fmt: Callable[[Any], str]
    table: str = "experiments"  # the markdown table that shows it ("experiments" or "issues")
    headline: bool = False  # `datamatters exps` shows it without --all

    @property
    def names(self) -> list[str]:
        """`<stage>.<key>`: what `datamatters exps` calls each key, and how a run holds it."""
        return [f"{self.stage}.{key}" for key in self.keys]

    def cell(self, measured: dict[str, Any]) -> str:
        return " / ".join(self.fmt(measured[name]) for name in self.names)


COLUMNS = (
    Column("quality", ("kept_fraction",), "kept", percent, headline=True),
    Column("labeling", ("dropped_for_label_issue",), "label issues dropped", num),
    Column("labeling", ("estimated_noise_rate",), "noise rate est.", partial(num, digits=3)),
    Column("quality", ("precision", "recall"), "quality P / R", partial(num, digits=3)),
    Column("labeling", ("label_issues",), "label issues", num, table="issues", headline=True),
    Column("augment", ("training_images",), "training images", num, headline=True),
)


def measure(exp: Experiment) -> dict[str, Any]:
    """Every catalogued value of `exp`, by `<stage>.<key>`."""
    return {
        name: exp.metric(metrics_file(column.stage), key)
        for column in COLUMNS
        for key, name in zip(column.keys, column.names, strict=True)
    }


def shown_in(table: str) -> list[Column]:
    return [column for column in COLUMNS if column.table == table]


def headline() -> list[str]:
    return [name for column in COLUMNS if column.headline for name in column.names]
