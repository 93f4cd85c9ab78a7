"""`reports/trace.md`: each experiment's data knobs, data-quality measurements, lineage hashes and
output metrics, and which differences between configurations exceed the noise.

Built in three steps, so each can be checked on its own: the model decides every number and
verdict, the plots draw it, the markdown presents it and links the plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datamatters.atomic import write_text
from datamatters.trace.experiments import Experiment
from datamatters.trace.markdown import render
from datamatters.trace.model import build_report
from datamatters.trace.plots import write_plots


def write_trace(
    experiments: Sequence[Experiment],
    set_names: Sequence[str],
    defaults: Mapping[str, Any],
    out_dir: Path,
    metrics: Sequence[str] = (),
) -> Path:
    """Write `out_dir/trace.md` and its PNGs for the named sets, with verdicts on `metrics` as
    `build_report` gives them; returns the report's path."""
    report = build_report(experiments, set_names, defaults, metrics)
    figures = write_plots(report, out_dir)
    path = out_dir / "trace.md"
    write_text(path, render(report, figures))
    return path
