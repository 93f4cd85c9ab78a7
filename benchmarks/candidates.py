"""Generator candidates on the default data, several training seeds each: which is least noisy.

    python benchmarks/candidates.py [--seeds 0 1 2 3] [--only dcgan sngan-ema] [--project .]
                                    [--out reports/candidates] [--jobs 1]

Reads the default pipeline's inputs from `--project` after `dvc repro` (`data/augmented`,
`models/judge.pt`, `data/reference_features`) and, per candidate and seed, runs the real `train`
and `evaluate` stage scripts on them in a scratch folder, with the params the candidate's
overrides compose (Inception off: the judge's FID is the sweep's metric). Writes
`<out>.md` (mean and standard deviation over seeds of the judge FID, precision and recall, and
the train stage's wall time) and `<out>.json` (every run), adding runs to an existing JSON.
`--jobs N` runs N trainings at once, each with its share of the CPU's threads: more runs per
hour on a small machine, but each run's wall time is then not the stage's time alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from datamatters.config import write_params

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = {
    "dcgan": ["model=dcgan", "model.ema.enabled=false"],
    "dcgan-ema": ["model=dcgan"],
    "dcgan-ema-da": ["model=dcgan", "model.diffaugment=[translation,cutout]"],
    "sngan-ema": ["model=sngan"],
    "sngan-ema-da": ["model=sngan", "model.diffaugment=[translation,cutout]"],
    "vae-ema": ["model=vae"],
}
COMPOSING = threading.Lock()
METRICS = ("fid_judge_1k", "precision_judge_1k", "recall_judge_1k", "memorization_judge_1k")


def run_stage(script: str, args: list[str], cwd: Path, threads: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONDONTWRITEBYTECODE="1")
    env["OMP_NUM_THREADS"] = str(threads)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{script}.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"{script} failed in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def train_and_evaluate(project: Path, overrides: list[str], seed: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="datamatters-candidate-") as tmp:
        work = Path(tmp)
        with COMPOSING:  # Hydra's global state admits one composition at a time
            write_params(
                work / "params.yaml",
                [*overrides, f"train.seed={seed}", "eval.metrics.inception_samples=0"],
                ROOT / "conf",
            )
        inputs = {
            "judge": str(project / "models" / "judge.pt"),
            "reference-features": str(project / "data" / "reference_features"),
        }
        seconds = run_stage(
            "train",
            ["--data", str(project / "data" / "augmented"), "--checkpoint", "generator.pt"]
            + ["--live-dir", "live", "--samples", "samples.png"]
            + [f"--{k}={v}" for k, v in inputs.items()],
            work,
            threads,
        )
        run_stage(
            "evaluate",
            ["--generator", "generator.pt", "--metrics", "evaluate.json"]
            + ["--training", str(project / "data" / "augmented")]
            + [f"--{k}={v}" for k, v in inputs.items()],
            work,
            threads,
        )
        metrics = json.loads((work / "evaluate.json").read_text())
    return {"train_seconds": round(seconds, 1)} | {m: metrics.get(m) for m in METRICS}


def _mean_sd(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    sd = f"{statistics.stdev(values):.{digits}f}" if len(values) > 1 else "n/a"
    return f"{statistics.mean(values):.{digits}f} ± {sd}"


def table(runs: list[dict]) -> str:
    """One row per candidate: mean ± standard deviation over its seeds."""
    lines = [
        "| candidate | seeds | fid_judge_1k (per seed) | precision_judge_1k | recall_judge_1k "
        "| memorization_judge_1k | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    first = {(r["candidate"], r["seed"]): r for r in reversed(runs)}  # a repeated run counts once
    for name in CANDIDATES:
        mine = sorted((r for (c, _), r in first.items() if c == name), key=lambda r: r["seed"])
        if not mine:
            continue

        def stat(key: str, digits: int, rows: list[dict] = mine) -> str:
            return _mean_sd([r[key] for r in rows if r.get(key) is not None], digits)

        per_seed = ", ".join(f"{r['fid_judge_1k']:.1f}" for r in mine)
        lines.append(
            f"| {name} | {len(mine)} | {stat('fid_judge_1k', 1)} ({per_seed}) "
            f"| {stat('precision_judge_1k', 3)} | {stat('recall_judge_1k', 3)} "
            f"| {stat('memorization_judge_1k', 3)} | {stat('train_seconds', 0)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "candidates")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    store = args.out.with_suffix(".json")
    runs = json.loads(store.read_text()) if store.is_file() else []
    # seeds outermost: an interrupted benchmark still covers every candidate
    todo = [
        (name, seed)
        for seed in args.seeds
        for name in args.only
        if not any(r["candidate"] == name and r["seed"] == seed for r in runs)
    ]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    lock = threading.Lock()

    def one(job: tuple[str, int]) -> None:
        name, seed = job
        result = train_and_evaluate(args.project.resolve(), CANDIDATES[name], seed, threads)
        with lock:
            runs.append({"candidate": name, "seed": seed, "jobs": args.jobs} | result)
            print(f"{name} seed {seed}: {result}", flush=True)
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(runs, indent=1) + "\n")
            args.out.with_suffix(".md").write_text(table(runs) + "\n")

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, todo))
    print(table(runs))


if __name__ == "__main__":
    main()
