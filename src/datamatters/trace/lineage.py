"""Lineage both ways: an experiment's data versions and removed images; a version's experiments."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dvc.api
import pandas as pd

from datamatters.data.contract import MANIFEST
from datamatters.pipeline import outputs
from datamatters.trace.experiments import Experiment, TraceError

REMOVED_COLUMNS = ("id", "source", "label", "issues", "injected")


def data_versions() -> list[str]:
    """Each data stage's data, then the model: what `datamatters lineage` lists the md5s of
    (read from dvc.yaml when asked, not at import)."""
    return [outputs(stage)[0] for stage in ("ingest", "quality", "labeling", "augment", "train")]


def decisions() -> str:
    """The labeling stage's manifest: the last to hold every row with its `keep` decision and the
    issues behind it (quality checks and label audit); augment keeps only the kept rows."""
    return f"{outputs('labeling')[0]}/{MANIFEST}"


def find(experiments: Sequence[Experiment], name: str) -> Experiment:
    """An experiment by name, or by a prefix of its commit."""
    for exp in experiments:
        if name in (exp.name, exp.rev) or (len(name) >= 7 and exp.rev.startswith(name)):
            return exp
    raise TraceError(f"no finished experiment named '{name}'; `dvc exp list -A` lists them")


def removed_images(exp: Experiment, repo: Path = Path(".")) -> pd.DataFrame:
    """The rows the experiment's filters kept out of training, with why (read from DVC's cache)."""
    try:
        with dvc.api.open(decisions(), repo=str(repo), rev=exp.rev, mode="rb") as handle:
            manifest = pd.read_parquet(handle)
    except Exception as err:  # DVC raises several types for a missing cache entry
        raise TraceError(
            f"cannot read {decisions()} of experiment {exp.name} ({exp.rev[:7]}): {err}. "
            "Fix: `dvc pull` (or `dvc exp pull <remote> <experiment>`) to fetch its data"
        ) from err
    removed = manifest.loc[~manifest["keep"].astype(bool)]
    columns = [c for c in REMOVED_COLUMNS if c in removed.columns]
    removed = removed[columns].copy()
    removed["issues"] = removed["issues"].map(lambda issues: ";".join(issues) or "undecodable")
    return removed.reset_index(drop=True)


def summary(exp: Experiment, removed: pd.DataFrame) -> list[str]:
    """What `datamatters lineage` prints: the experiment's data versions, then its removed
    images counted by reason."""
    lines = [
        f"experiment {exp.name}: commit {exp.rev[:7]}, run on {exp.baseline[:7]}, {exp.timestamp}"
    ]
    lines += [f"  {path:<22} {exp.outs.get(path, '-')}" for path in data_versions()]
    lines.append(f"{len(removed)} images kept out of training, by reason:")
    if "injected" in removed:
        injected = int(removed["injected"].notna().sum())
        lines.append(f"  ({injected} of them carried injected corruption)")
    lines += [
        f"  {count:>6}  {reason}" for reason, count in removed["issues"].value_counts().items()
    ]
    return lines


def used_by(experiments: Sequence[Experiment], md5: str) -> list[tuple[Experiment, str]]:
    """(experiment, path) for every output of every experiment whose hash starts with `md5`."""
    if len(md5) < 6:
        raise TraceError(f"'{md5}': give at least 6 characters of the md5 from dvc.lock")
    return [
        (exp, path)
        for exp in experiments
        for path, value in exp.outs.items()
        if value and value.startswith(md5)
    ]
