"""Generator candidates on the default data, several training seeds each: which is least noisy.

    python benchmarks/candidates.py [--seeds 0 1 2 3] [--only dcgan r3gan] [--project .]
                                    [--out reports/candidates] [--jobs 1] [--inception 500]

Reads the default pipeline's inputs from `--project` after `dvc repro` (`data/augmented`,
`models/judge.pt`, `data/reference_features`) and, per candidate and seed, runs the real `train`
and `evaluate` stage scripts on them in a scratch folder, with the params the candidate's
overrides compose (`--inception 0` skips the Inception metrics, for a quick screen). Writes
each run's final sample grid to `<out>-grids/<candidate>-seed<k>.png`, and
`<out>.md` (mean and standard deviation over seeds of the FIDs, precision and recall in both
feature spaces, and the stages' wall times) and `<out>.json` (every run), adding runs to an
existing JSON.
`--jobs N` runs N trainings at once, each with its share of the CPU's threads: more runs per
hour on a small machine, but each run's wall time is then not the stage's time alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
SNGAN_PUBLISHED = [
    "model=sngan",
    "model.g_optimizer.betas=[0.0,0.9]",
    "model.d_optimizer.betas=[0.0,0.9]",
]


def learning_rate(lr: float) -> list[str]:
    return [f"model.g_optimizer.lr={lr}", f"model.d_optimizer.lr={lr}"]


CANDIDATES = {
    "dcgan": ["model=dcgan"],  # the default: averaged weights, width 32, Adam 8e-4
    "dcgan-lr2": ["model=dcgan", *learning_rate(0.0002)],  # the default before this table
    "dcgan-lr4": ["model=dcgan", *learning_rate(0.0004)],
    "dcgan-lr16": ["model=dcgan", *learning_rate(0.0016)],
    "dcgan-w64-lr2": [
        "model=dcgan",
        "model.generator.width=64",
        "model.discriminator.width=64",
        *learning_rate(0.0002),
    ],
    "dcgan-b32-lr2": ["model=dcgan", "datamodule.batch_size=32", *learning_rate(0.0002)],
    "dcgan-b16-lr2": ["model=dcgan", "datamodule.batch_size=16", *learning_rate(0.0002)],
    "dcgan-b32": ["model=dcgan", "datamodule.batch_size=32"],
    "r3gan": ["model=r3gan"],
    "r3gan-g1": ["model=r3gan", "model.r1_gamma=1", "model.r2_gamma=1"],
    "sngan-ttur": [*SNGAN_PUBLISHED, "model.g_optimizer.lr=0.0001", "model.d_optimizer.lr=0.0004"],
    "sngan-d2": [*SNGAN_PUBLISHED, "model.d_steps=2"],
    "vae": ["model=vae"],
    "flow": ["model=flow"],
    "flow-8x": ["model=flow", "train.kimg=634.88"],
}
COMPOSING = threading.Lock()
METRICS = tuple(
    f"{stat}_{features}"
    for features in ("judge_1k", "inception_500")
    for stat in ("fid", "precision", "recall")
) + ("memorization_judge_1k",)


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


def train_and_evaluate(
    project: Path, overrides: list[str], seed: int, threads: int, inception: int, grid: Path
) -> dict:
    with tempfile.TemporaryDirectory(prefix="datamatters-candidate-") as tmp:
        work = Path(tmp)
        with COMPOSING:  # Hydra's global state admits one composition at a time
            write_params(
                work / "params.yaml",
                [*overrides, f"train.seed={seed}", f"eval.metrics.inception_samples={inception}"],
                ROOT / "conf",
            )
        inputs = {
            "judge": str(project / "models" / "judge.pt"),
            "reference-features": str(project / "data" / "reference_features"),
        }
        seconds = run_stage(
            "train",
            ["--data", str(project / "data" / "augmented"), "--checkpoint", "generator.pt"]
            + ["--live-dir", "live", "--samples", "samples.png", "--resume-dir", "resume"]
            + [f"--{k}={v}" for k, v in inputs.items()],
            work,
            threads,
        )
        evaluate_seconds = run_stage(
            "evaluate",
            ["--generator", "generator.pt", "--metrics", "evaluate.json"]
            + ["--training", str(project / "data" / "augmented")]
            + [f"--{k}={v}" for k, v in inputs.items()],
            work,
            threads,
        )
        metrics = json.loads((work / "evaluate.json").read_text())
        grid.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "samples.png", grid)
    times = {"train_seconds": round(seconds, 1), "evaluate_seconds": round(evaluate_seconds, 1)}
    return times | {m: metrics.get(m) for m in METRICS}


def _mean_sd(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    sd = f"{statistics.stdev(values):.{digits}f}" if len(values) > 1 else "n/a"
    return f"{statistics.mean(values):.{digits}f} ± {sd}"


def table(runs: list[dict]) -> str:
    """One row per candidate: mean ± standard deviation over its seeds."""
    columns = [m for m in METRICS if m != "fid_judge_1k"]
    lines = [
        "| candidate | seeds | fid_judge_1k (per seed) | CV | "
        + " | ".join(columns)
        + " | train s | evaluate s |",
        "|---|---|---|---|" + "---|" * (len(columns) + 2),
    ]
    first = {(r["candidate"], r["seed"]): r for r in reversed(runs)}  # a repeated run counts once
    for name in CANDIDATES:
        mine = sorted((r for (c, _), r in first.items() if c == name), key=lambda r: r["seed"])
        if not mine:
            continue

        def stat(key: str, digits: int, rows: list[dict] = mine) -> str:
            return _mean_sd([r[key] for r in rows if r.get(key) is not None], digits)

        fids = [r["fid_judge_1k"] for r in mine]
        per_seed = ", ".join(f"{value:.1f}" for value in fids)
        cv = f"{statistics.stdev(fids) / statistics.mean(fids):.0%}" if len(fids) > 1 else "-"
        cells = [stat(m, 1 if m.startswith("fid") else 3) for m in columns]
        lines.append(
            f"| {name} | {len(mine)} | {stat('fid_judge_1k', 1)} ({per_seed}) | {cv} | "
            + " | ".join(cells)
            + f" | {stat('train_seconds', 0)} | {stat('evaluate_seconds', 0)} |"
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
    parser.add_argument(
        "--inception", type=int, default=500, help="Inception samples per run (0: judge only)"
    )
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
        grid = args.out.parent / f"{args.out.name}-grids" / f"{name}-seed{seed}.png"
        result = train_and_evaluate(
            args.project.resolve(), CANDIDATES[name], seed, threads, args.inception, grid
        )
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
