"""The finished experiments of a repository, read through `dvc exp show --json`.

DVC keeps each experiment as a commit under `refs/exps`, with its params, metrics and the
`dvc.lock` hashes of every output; this module only reads them, so what the report says is what
DVC recorded.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from datamatters.pipeline import metrics_file, outputs

SET_MEMBER = re.compile(r"^(?P<set>.+)-(?P<index>\d+)$")
EXP_REF = re.compile(r"^refs/exps/([0-9a-f]{2})/([0-9a-f]{38})/[^/]+$")
# What the trace reads of each experiment: the outputs that say which data a model saw and which
# model it was (their dvc.lock hashes), and the metrics files read beside the column catalogue.
PATHS = ("TRAINING_SET", "CHECKPOINT", "QUALITY", "EVALUATE", "REAL_FLOOR")


class TraceError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""


@cache
def paths() -> dict[str, str]:
    """The paths dvc.yaml declares, read on first use: importing the trace needs no dvc.yaml."""
    files = [metrics_file(stage) for stage in ("quality", "evaluate", "real_floor")]
    return dict(zip(PATHS, [outputs("augment")[0], outputs("train")[0], *files], strict=True))


def __getattr__(name: str) -> str:
    """`EVALUATE` and the other paths as the constants callers import, read when first asked."""
    if name in PATHS:
        return paths()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Experiment:
    name: str
    rev: str  # the experiment's own commit
    baseline: str  # the commit it was run on
    timestamp: str
    params: dict[str, Any]  # params.yaml, flattened to dotted keys
    metrics: dict[str, dict[str, Any]]  # metrics file -> its values, flattened
    outs: dict[str, str] = field(default_factory=dict)  # output path -> its dvc.lock hash

    def metric(self, file: str, key: str) -> Any:
        return self.metrics.get(file, {}).get(key)

    def output(self, key: str) -> Any:
        """What evaluate recorded under `key`: the output metrics every verdict is on."""
        return self.metric(paths()["EVALUATE"], key)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def load_experiments(repo: Path = Path(".")) -> list[Experiment]:
    """Every successful experiment in `repo`, on whichever commit it was run: the commits come
    from DVC's refs/exps/<2>/<38>/<name> layout."""
    refs = _run(repo, "git", "for-each-ref", "--format=%(refname)", "refs/exps")
    found = (EXP_REF.match(ref) for ref in refs.splitlines())
    baselines = sorted({match[1] + match[2] for match in found if match})
    if not baselines:
        return []
    revs = [arg for rev in baselines for arg in ("--rev", rev)]
    shown = json.loads(_run(repo, "dvc", "exp", "show", "--json", "-n", "1", *revs))
    return [exp for commit in shown for exp in _experiments_of(commit)]


def set_of(exp: Experiment) -> str | None:
    """The set an experiment belongs to: `dvc exp run -n NAME` on a grid names its runs NAME-1..."""
    match = SET_MEMBER.match(exp.name)
    return match["set"] if match else None


def select(experiments: Iterable[Experiment], name: str) -> list[Experiment]:
    """The experiment called `name`, or else the set `name`: the experiments called `name-<n>`."""
    experiments = list(experiments)
    own = [exp for exp in experiments if exp.name == name]
    members = own or [exp for exp in experiments if set_of(exp) == name]
    return sorted(members, key=lambda exp: _natural(exp.name))


def resolve_sets(
    experiments: Sequence[Experiment], names: Sequence[str]
) -> list[tuple[str, list[Experiment]]]:
    """The sets to trace: each named set on its own, the named single experiments together.

    With no names, every set here and, as one more set, the experiments in none. Single
    experiments (`dvc exp run -n clean`, `-n dirty`) are compared with each other, so they
    form one set, named `clean+dirty`.
    """
    sets = sorted({s for exp in experiments if (s := set_of(exp))}, key=_natural)
    loose = [exp.name for exp in experiments if set_of(exp) is None]
    resolved: list[tuple[str, list[Experiment]]] = []
    singles: list[Experiment] = []
    for name in names or [*sets, *loose]:
        members = select(experiments, name)
        if not members:
            known = sorted((f"{s} (set)" for s in sets), key=_natural) + sorted(loose, key=_natural)
            raise TraceError(
                f"no finished experiment or set is named '{name}'; here: "
                f"{', '.join(known) or 'none'}. Run one with `dvc exp run -n {name}`"
                f" (a set: `dvc exp run --queue -n {name} -S ...` and `dvc queue start`)"
            )
        if len(members) == 1 and members[0].name == name:
            singles += members
        else:
            resolved.append((name, members))
    if singles:
        resolved.append(("+".join(exp.name for exp in singles), singles))
    return resolved


def _experiments_of(commit: Mapping[str, Any]) -> Iterable[Experiment]:
    for exp in commit.get("experiments") or []:
        state = (exp.get("executor") or {}).get("state", "success")
        rev = exp["revs"][0]
        if state != "success" or rev.get("error") or not rev.get("data"):
            continue
        data = rev["data"]
        yield Experiment(
            name=exp.get("name") or rev["name"],
            rev=rev["rev"],
            baseline=commit["rev"],
            timestamp=data.get("timestamp") or "",
            params=flatten((data.get("params") or {}).get("params.yaml", {}).get("data", {})),
            metrics={
                path: flatten(values.get("data", {}))
                for path, values in (data.get("metrics") or {}).items()
            },
            outs={path: out["hash"] for path, out in (data.get("outs") or {}).items()},
        )


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _run(repo: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    if done.returncode:
        raise TraceError(
            f"`{' '.join(command)}` failed in {repo}: {done.stderr.strip() or done.stdout.strip()}"
            " (run this in a DVC project's root)"
        )
    return done.stdout
