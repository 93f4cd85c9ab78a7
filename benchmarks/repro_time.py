"""Wall time and disk use of the default pipeline on a fresh clone: every stage, a no-op, a
training change.

    python benchmarks/repro_time.py [--rev REV ...] [--repo .] [--keep]

For each `--rev` (default: HEAD; give two, e.g. `--rev <before> --rev HEAD`, for a before/after
table measured on the same machine in one run), clones the committed revision into a temporary
directory (so nothing cached here helps), runs `dvc repro --force` with its default params.yaml,
then a no-op `dvc repro` and one after a training-only change, and prints each stage's own time
(every stage prints `[stage] done in N s`), the wall times, the metrics the run produced, and the
bytes the forced run left in `data/` and in the DVC cache (each file counted once, as `du` does).
The wall time of `dvc repro --force` less the stages' own times is start-up (Python and the
imports of each stage script) and DVC's own work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from project_runs import RAN, run, stage_seconds

from datamatters.storage import bytes_on_disk


@dataclass
class Timing:
    rev: str
    stages: dict[str, float] = field(default_factory=dict)
    forced: float = 0.0
    noop: float = 0.0
    training_change: float = 0.0
    training_change_stages: list[str] = field(default_factory=list)
    metrics: dict[str, dict] = field(default_factory=dict)
    disk: dict[str, int] = field(default_factory=dict)


def halve_learning_rate(clone: Path) -> None:
    params_file = clone / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    optimizer = next(v for k, v in params["model"].items() if k.endswith("optimizer"))
    optimizer["lr"] = optimizer["lr"] / 2
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def measure(repo: Path, rev: str, work: Path) -> Timing:
    clone = work / rev.replace("/", "_")
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", rev], check=True)
    timing = Timing(rev)
    # --force: a fresh clone already has the git-tracked metrics files, and DVC rightly skips a
    # stage whose deterministic inputs and outputs match dvc.lock; forcing times every stage.
    timing.forced, output = run(["dvc", "repro", "--force"], clone)
    timing.stages = stage_seconds(output)
    timing.metrics = {
        name: json.loads((clone / "metrics" / f"{name}.json").read_text())
        for name in ("judge", "labeling", "evaluate")
    }
    data, cache = clone / "data", clone / ".dvc" / "cache"
    timing.disk = {
        "data/": bytes_on_disk(data),
        "DVC cache": bytes_on_disk(cache),
        "both": bytes_on_disk(data, cache),
    }
    timing.noop, _ = run(["dvc", "repro"], clone)
    halve_learning_rate(clone)
    timing.training_change, output = run(["dvc", "repro"], clone)
    timing.training_change_stages = RAN.findall(output)
    return timing


def report(timings: list[Timing]) -> None:
    stages = list(dict.fromkeys(s for t in timings for s in t.stages))
    width = max(12, *(len(t.rev) + 2 for t in timings))
    print(f"{'stage':<22}" + "".join(f"{t.rev:>{width}}" for t in timings))
    for stage in stages:
        cells = "".join(f"{t.stages.get(stage, float('nan')):>{width - 2}.1f} s" for t in timings)
        print(f"{stage:<22}{cells}")
    rows = {
        "sum of the stages": lambda t: sum(t.stages.values()),
        "dvc repro --force": lambda t: t.forced,
        "start-up and DVC": lambda t: t.forced - sum(t.stages.values()),
        "no-op dvc repro": lambda t: t.noop,
        "training change": lambda t: t.training_change,
    }
    for name, value in rows.items():
        print(f"{name:<22}" + "".join(f"{value(t):>{width - 2}.1f} s" for t in timings))
    for name in timings[0].disk:
        cells = "".join(f"{t.disk[name] / 2**20:>{width - 4}.1f} MiB" for t in timings)
        print(f"{name:<22}{cells}")
    for t in timings:
        print(f"\n{t.rev}: the training change re-ran {', '.join(t.training_change_stages)}")
        for name, metrics in t.metrics.items():
            numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
            print(f"  metrics/{name}.json: {json.dumps(numbers)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--rev", action="append", help="a commit to measure (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clones")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="datamatters-bench-"))
    timings = []
    for rev in args.rev or ["HEAD"]:
        timings.append(measure(args.repo, rev, work))
        print(f"measured {rev}: dvc repro --force {timings[-1].forced:.1f} s", flush=True)
    report(timings)
    if args.keep:
        print("clones kept under", work)
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
