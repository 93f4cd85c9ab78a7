"""Where a finished sweep's time went: its busy time, and each stage's share of it.

    python benchmarks/sweep_time.py headline ablation

Reads the named experiment sets from `dvc exp show`, then each experiment's queue log under
`.dvc/tmp/exps/run/`, where every stage prints `[stage] done in N s`. An experiment's time runs
from its log's creation to its last write (GNU `stat`, file birth time), so time the queue sat
idle is not counted. What the stages do not account for is DVC's own work: copying the
workspace, hashing, restoring cached outputs, committing the result. Stages DVC skipped
(unchanged, or restored from its run cache) cost nothing and are counted apart.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from datamatters.trace.experiments import Experiment, load_experiments, select  # noqa: E402

RAN = re.compile(r"^\[(\w+)\] done in ([\d.]+) s$", re.M)
SKIPPED = re.compile(r"^Stage '(\w+)' didn't change, skipping$", re.M)
RESTORED = re.compile(r"^Stage '(\w+)' is cached - skipping run, checking out outputs$", re.M)
RUNS = Path(".dvc/tmp/exps/run")


def queue_log(exp: Experiment) -> Path:
    """The newest queue log of the task that produced `exp` (same name, same baseline)."""
    found = []
    for info in RUNS.glob("*/*.run"):
        task = json.loads(info.read_text())
        if task.get("name") == exp.name and task.get("baseline_rev") == exp.baseline:
            found.append(info.with_suffix(".out"))
    if not found:
        sys.exit(f"no queue log for {exp.name} under {RUNS}: was it run with `dvc queue start`?")
    return max(found, key=lambda path: path.stat().st_mtime)


def busy_seconds(log: Path) -> float:
    born = int(subprocess.run(["stat", "-c", "%W", log], capture_output=True, text=True).stdout)
    if born <= 0:
        sys.exit("this file system does not record file birth times; cannot time the runs")
    return log.stat().st_mtime - born


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sets", nargs="+")
    args = parser.parse_args()

    everything = load_experiments()
    experiments = [exp for name in args.sets for exp in select(everything, name)]
    seconds, runs, skipped = Counter(), Counter(), Counter()
    busy = 0.0
    for exp in experiments:
        log = queue_log(exp)
        busy += busy_seconds(log)
        text = log.read_text(errors="replace")
        for stage, elapsed in RAN.findall(text):
            seconds[stage] += float(elapsed)
            runs[stage] += 1
        for stage in SKIPPED.findall(text) + RESTORED.findall(text):
            skipped[stage] += 1
    print(f"{len(experiments)} experiments in {', '.join(args.sets)}: {busy / 60:.1f} min busy")
    print(f"{'stage':<20}{'runs':>6}{'skipped':>9}{'seconds':>10}{'share':>8}")
    for stage in sorted(seconds.keys() | skipped.keys(), key=lambda s: -seconds[s]):
        total = seconds[stage]
        print(f"{stage:<20}{runs[stage]:>6}{skipped[stage]:>9}{total:>10.0f}{total / busy:>8.1%}")
    other = busy - sum(seconds.values())
    print(f"{'DVC and the rest':<20}{'':>6}{'':>9}{other:>10.0f}{other / busy:>8.1%}")


if __name__ == "__main__":
    main()
