"""Training runs on a machine without DVC (a rented GPU): prepared here, run there, reported here.

    python benchmarks/device_runs.py prepare --bundle .bundle [--plan flow]
    python benchmarks/device_runs.py run --bundle .bundle --out OUT [--jobs 8] [--deadline 470]
    python benchmarks/device_runs.py score CHECKPOINT.pt ... --out scores.json [--inception 500]
    python benchmarks/device_runs.py report OUT/results.json [--out reports/flow-gpu]
                                    [--scores scores.json] [--trace]

`prepare` (here, with DVC) builds every data variant the plan names with the real pipeline in a
scratch project (`dvc repro augment` with the variant's overrides), copies its training set, the
judge and the judge's reference features into the bundle, and composes each run's params.yaml.
The bundle needs nothing but torch, lightning, hydra-core and omegaconf to run.

`run` (there) trains each run as the train stage does (the composed model and datamodule, the
budget in training images, averaged weights, the per-epoch judge FID and the sample grid) on the
params' accelerator, writes the checkpoint, reloads it and scores it with the evaluate stage's
metrics, judge features only (the Inception weights stay here; `evaluate` scores the kept
checkpoints with them). Runs go `--jobs` at a time, longest first; a run that cannot finish its
budget before `--deadline` seconds stops there and says how many images it saw. It writes
`results.json`, `runs.tar` (each run's curve, grid and metrics) and `checkpoints.tar` (the
plan's kept checkpoints). `score` (here) measures kept clean-data checkpoints with the Inception
metrics of the evaluate stage, and `report --scores` adds them to the tables.

The `recipe` plan: four DCGAN recipes at the default budget, four seeds each (their checkpoints
come back to be scored with Inception here); the flow and the
linear-output DCGAN on 1,000 tinted 64×64 digits at the full budget (the colour check, each
variant on its own folder with its own judge); and the flow at 8x the budget, three seeds.

The `flow` plan: `model=flow` at the default budget on clean and 30%-corrupted data, filters on
and off, three seeds (the headline check for the second family), and the clean default data at
8x (three seeds) and 32x (one seed) the budget.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KIMG = 79.36
VARIANTS = {
    "clean-default": [],
    "clean-none": ["filters=none"],
    "c30-default": ["ingest.corrupt.mixed=0.3"],
    "c30-none": ["ingest.corrupt.mixed=0.3", "filters=none"],
    "colour64": ["data=folder", "data.channels=3", "data.image_size=64"],
}
# Variants on a folder of their own (`label_audit_scale.write_digits`: images, side, tinted),
# which need their own judge and reference features.
FOLDERS = {"colour64": (1000, 64, True)}
GPU = ["trainer=gpu", "trainer.deterministic=warn"]
LINEAR = ["model.generator.output=linear"]
DCGAN_CANDIDATES = {
    "dcgan": [],
    "dcgan-linear": LINEAR,
    "dcgan-linear-lr4": [*LINEAR, "model.g_optimizer.lr=0.0004", "model.d_optimizer.lr=0.0004"],
    "dcgan-linear-translation": [*LINEAR, "model.diffaugment=[translation]"],
}


def flow_plan() -> list[dict]:
    """Longest first, so the pool never ends waiting on one long run started last."""

    def run(name: str, variant: str, seed: int, budget: float) -> dict:
        return {"name": name, "variant": variant, "seed": seed, "kimg": budget * DEFAULT_KIMG}

    runs = [run("flow-32x-s0", "clean-default", 0, 32)]
    runs += [run(f"flow-8x-s{seed}", "clean-default", seed, 8) for seed in range(3)]
    runs += [run(f"flow-{v}-s{seed}", v, seed, 1) for seed in range(3) for v in VARIANTS]
    keep = {"flow-32x-s0", "flow-8x-s0", "flow-clean-default-s0"}
    return [r | {"overrides": ["model=flow", *GPU], "keep": r["name"] in keep} for r in runs]


def recipe_plan() -> list[dict]:
    """The GAN recipe at the default budget (four seeds each; the checkpoints come back to be
    scored with Inception here), the colour check at the full budget, and the flow at 8x."""

    def run(name: str, candidate: str, variant: str, seed: int, overrides: list[str]) -> dict:
        kimg = 8 * DEFAULT_KIMG if name.startswith("flow-8x") else DEFAULT_KIMG
        return {
            "name": name,
            "candidate": candidate,
            "variant": variant,
            "seed": seed,
            "kimg": kimg,
            "overrides": [*overrides, *GPU],
            "keep": variant == "clean-default",
        }

    runs = [
        run(f"flow-8x-s{seed}", "flow", "clean-default", seed, ["model=flow"]) for seed in range(3)
    ]
    runs += [
        run(f"colour-flow-s{seed}", "flow", "colour64", seed, ["model=flow"]) for seed in range(2)
    ]
    runs.append(run("colour-dcgan-linear-s0", "dcgan-linear", "colour64", 0, LINEAR))
    runs += [
        run(f"{name}-s{seed}", name, "clean-default", seed, ["model=dcgan", *overrides])
        for seed in range(4)
        for name, overrides in DCGAN_CANDIDATES.items()
    ]
    return runs


PLANS = {"flow": flow_plan, "recipe": recipe_plan}


# ---- prepare (here) -------------------------------------------------------------------------


def copy_reference_features(source: Path, target: Path) -> None:
    """The judge's reference features (the Inception ones stay here, as their weights do)."""
    (target / "reference_features").mkdir(parents=True)
    for name in ("judge.npy", "rows.parquet"):
        shutil.copy2(source / name, target / "reference_features" / name)


def yardstick(bundle: Path, variant: str) -> Path:
    """Where a variant's judge and reference features are: beside its data, or the bundle's."""
    own = bundle / "data" / variant
    return own if (own / "judge.pt").is_file() else bundle


def prepare(bundle: Path, plan: list[dict]) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from label_audit_scale import write_digits
    from project_runs import run as run_here
    from project_runs import scratch_project

    from datamatters.config import write_params

    if bundle.exists():
        shutil.rmtree(bundle)
    (bundle / "params").mkdir(parents=True)
    shutil.copy2(ROOT / "models" / "judge.pt", bundle / "judge.pt")
    copy_reference_features(ROOT / "data" / "reference_features", bundle)
    variants = {variant: list(VARIANTS[variant]) for variant in {run["variant"] for run in plan}}
    folders = Path(tempfile.mkdtemp(prefix="datamatters-folders-"))
    for variant, (count, side, colour) in FOLDERS.items():
        if variant in variants:
            write_digits(folders / variant, count, side, colour)
            variants[variant].append(f"data.path={folders / variant}")
    for variant, overrides in sorted(variants.items()):
        with tempfile.TemporaryDirectory(prefix="datamatters-variant-") as tmp:
            work = scratch_project(Path(tmp), overrides)
            target = bundle / "data" / variant
            if variant in FOLDERS:  # its own yardstick, beside its data
                seconds, _ = run_here(["dvc", "repro", "-q", "augment", "reference_features"], work)
                shutil.copytree(work / "data" / "augmented", target / "augmented")
                shutil.copy2(work / "models" / "judge.pt", target / "judge.pt")
                copy_reference_features(work / "data" / "reference_features", target)
            else:
                seconds, _ = run_here(["dvc", "repro", "-q", "augment"], work)
                shutil.copytree(work / "data" / "augmented", target / "augmented")
        print(f"variant {variant}: built in {seconds:.0f} s", flush=True)
    for run in plan:
        overrides = [*variants[run["variant"]], *run["overrides"]]
        overrides += [f"train.seed={run['seed']}", f"train.kimg={run['kimg']:.2f}"]
        overrides += ["eval.metrics.inception_samples=0"]
        write_params(bundle / "params" / f"{run['name']}.yaml", overrides, ROOT / "conf")
    (bundle / "plan.json").write_text(json.dumps(plan, indent=1) + "\n")
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    print(f"bundle {bundle}: {len(plan)} runs, {size / 2**20:.1f} MiB")


# ---- run (there) ----------------------------------------------------------------------------


def train_one(bundle: Path, name: str, out: Path, seconds: float, accelerator: str | None) -> None:
    """One run, in its own process: the train stage's recipe, then the evaluate stage's metrics."""
    import lightning as L
    import torch
    from hydra.utils import instantiate
    from lightning.pytorch.loggers import CSVLogger
    from omegaconf import OmegaConf

    from datamatters.data.contract import read_stage_data
    from datamatters.features import reference_cache
    from datamatters.metrics.evaluation import evaluate_generator
    from datamatters.models.callbacks import EpochFID, SampleGrid
    from datamatters.models.checkpoint import load_checkpoint, save_checkpoint
    from datamatters.models.generative import images_budget

    run = next(r for r in json.loads((bundle / "plan.json").read_text()) if r["name"] == name)
    params = OmegaConf.load(bundle / "params" / f"{name}.yaml")
    data = bundle / "data" / run["variant"] / "augmented"
    scale = yardstick(bundle, run["variant"])
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(params.train.seed, workers=True, verbose=False)
    datamodule = instantiate(params.datamodule, data_dir=str(data), seed=params.train.seed)
    model = instantiate(params.model)
    judge = load_checkpoint(scale / "judge.pt")
    reference, _ = reference_cache.load(scale / "reference_features", "judge")
    datamodule.setup()
    epochs = params.train.kimg * 1000 / len(datamodule.data.images)
    callbacks = [
        EpochFID(judge, reference, params.train.fid_samples),
        SampleGrid(str(out / "samples.png"), every_n_epochs=max(1, round(epochs / 10))),
    ]
    trainer_config = dict(OmegaConf.to_container(params.trainer, resolve=True))
    if accelerator:
        trainer_config["accelerator"] = accelerator
    trainer = instantiate(
        trainer_config,
        logger=CSVLogger(str(out), name="", version=""),
        callbacks=callbacks,
        max_time=timedelta(seconds=int(seconds)),
    )
    budget = images_budget(params.train.kimg, params.datamodule.batch_size)
    trainer.fit_loop.epoch_loop.max_steps = model.optimizer_steps(budget)
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    train_seconds = time.perf_counter() - started
    config = OmegaConf.to_container(params.model, resolve=True)
    save_checkpoint(model, config, out / "generator.pt")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    generator = load_checkpoint(out / "generator.pt").to(device)
    metrics = evaluate_generator(
        generator,
        judge.to(device),
        scale / "reference_features",
        params.eval.metrics,
        read_stage_data(data).images,
    )
    scores = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    result = run | {
        "params": OmegaConf.to_container(params, resolve=True),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "steps": trainer.global_step,
        # batches, not optimizer steps: a GAN takes two steps per batch
        "kimg_seen": batches_seen(trainer) * params.datamodule.batch_size / 1000,
        "train_seconds": round(train_seconds, 1),
        "evaluate_seconds": round(time.perf_counter() - started, 1),
        "training_images": len(datamodule.data.images),
    }
    (out / "result.json").write_text(json.dumps(result | scores, indent=1) + "\n")


def batches_seen(trainer) -> int:
    return trainer.fit_loop.epoch_loop.batch_progress.total.completed


def run_all(
    bundle: Path,
    out: Path,
    jobs: int,
    deadline: float,
    accelerator: str | None,
    only: list[str] | None = None,
) -> None:
    started = time.monotonic()
    plan = json.loads((bundle / "plan.json").read_text())
    plan = [run for run in plan if not only or run["name"] in only]
    work = Path(tempfile.mkdtemp(prefix="datamatters-runs-"))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CUBLAS_WORKSPACE_CONFIG=":4096:8")
    pending, running, finished = list(plan), {}, []
    while pending or running:
        while pending and len(running) < jobs:
            run = pending.pop(0)
            left = deadline - (time.monotonic() - started) - 60  # time to evaluate and pack
            if left < 30:
                finished.append(run | {"skipped": "deadline"})
                continue
            command = [sys.executable, __file__, "train-one", "--bundle", str(bundle)]
            command += ["--name", run["name"], "--out", str(work / run["name"])]
            command += ["--seconds", str(int(left))]
            command += ["--accelerator", accelerator] if accelerator else []
            log = (work / f"{run['name']}.log").open("w")
            running[run["name"]] = (run, subprocess.Popen(command, env=env, stdout=log, stderr=log))
            print(f"{time.monotonic() - started:5.0f} s  start {run['name']}", flush=True)
        time.sleep(1)
        for name, (run, process) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            result = work / name / "result.json"
            if process.returncode or not result.is_file():
                tail = (work / f"{name}.log").read_text()[-2000:]
                finished.append(run | {"failed": process.returncode, "log": tail})
                print(f"FAILED {name}:\n{tail}", flush=True)
            else:
                finished.append(json.loads(result.read_text()))
                print(f"{time.monotonic() - started:5.0f} s  done {name}: {summary(finished[-1])}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(finished, indent=1) + "\n")
    with tarfile.open(out / "runs.tar", "w") as tar:
        for run in plan:
            for path in sorted((work / run["name"]).glob("*")):
                if path.suffix != ".pt":
                    tar.add(path, f"{run['name']}/{path.name}")
            if (work / f"{run['name']}.log").is_file():
                tar.add(work / f"{run['name']}.log", f"{run['name']}/train.log")
    with tarfile.open(out / "checkpoints.tar", "w") as tar:  # one file: a few come back
        for run in plan:
            checkpoint = work / run["name"] / "generator.pt"
            if run.get("keep") and checkpoint.is_file():
                tar.add(checkpoint, f"{run['name']}.pt")
    print(f"{time.monotonic() - started:.0f} s in all; results in {out}")


def summary(result: dict) -> str:
    keys = ("kimg_seen", "train_seconds", "fid_judge_1k", "precision_judge_1k", "recall_judge_1k")
    return "  ".join(f"{k}={result.get(k)}" for k in keys)


# ---- report (here) --------------------------------------------------------------------------


def per_epoch_fid(runs_tar: Path, runs: list[dict]) -> dict[str, list[float]]:
    """Each run's per-epoch judge FID curve, from its CSV log, the tar read once."""
    from datamatters.metrics.names import MetricName

    curves = {}
    with tarfile.open(runs_tar) as tar:
        names = set(tar.getnames())
        for run in runs:
            member = f"{run['name']}/metrics.csv"
            column = str(MetricName("fid", "judge", run["params"]["train"]["fid_samples"]))
            if member in names:
                rows = csv.DictReader(line.decode() for line in tar.extractfile(member))
                curves[run["name"]] = [float(row[column]) for row in rows if row.get(column)]
    return curves


def with_params(results: Path, bundle: Path) -> list[dict]:
    """The finished runs, each with its composed params (from the bundle, for older results)."""
    import yaml

    runs = [r for r in json.loads(results.read_text()) if "fid_judge_1k" in r]
    for run in runs:
        if "params" not in run:
            run["params"] = yaml.safe_load((bundle / "params" / f"{run['name']}.yaml").read_text())
    return runs


def report(runs: list[dict], runs_tar: Path) -> str:
    lines = [
        "| run | data | seed | kimg seen | train s | `fid_judge_1k` | precision | recall "
        "| memorisation | per-epoch FID: best, worst of last quarter |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    curves = per_epoch_fid(runs_tar, runs)
    for r in runs:
        curve = curves.get(r["name"], [])
        tail = curve[len(curve) * 3 // 4 :]
        shape = f"{min(curve):.1f}, {max(tail):.1f}" if curve else "-"
        lines.append(
            f"| {r['name']} | {r['variant']} | {r['seed']} | {r['kimg_seen']:.0f} "
            f"| {r['train_seconds']:.0f} | {r['fid_judge_1k']:.1f} "
            f"| {r['precision_judge_1k']:.3f} | {r['recall_judge_1k']:.3f} "
            f"| {r.get('memorization_judge_1k', float('nan')):.3f} | {shape} |"
        )
    groups: dict[tuple[str, str, float], list[dict]] = {}
    for r in runs:  # by the budget planned; a run a deadline stopped shows in "kimg seen"
        groups.setdefault((r.get("candidate", "flow"), r["variant"], r["kimg"]), []).append(r)
    lines += [
        "",
        "| candidate | data | kimg planned | kimg seen | seeds | `fid_judge_1k` mean ± SD "
        "| `fid_inception_500` mean ± SD | Inception precision | Inception recall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (candidate, variant, kimg), group in sorted(groups.items()):
        seen = sorted(round(r["kimg_seen"]) for r in group)
        seen_cell = f"{seen[0]}" if seen[0] == seen[-1] else f"{seen[0]}-{seen[-1]}"
        cells = " | ".join(spread([r.get(k) for r in group]) for k in SUMMARISED)
        lines.append(
            f"| {candidate} | {variant} | {kimg:.0f} | {seen_cell} | {len(group)} | {cells} |"
        )
    return "\n".join(lines)


SUMMARISED = (
    "fid_judge_1k",
    "fid_inception_500",
    "precision_inception_500",
    "recall_inception_500",
)


def spread(values: list[float | None]) -> str:
    """Mean ± SD over seeds, '-' where a run lacks the metric."""
    if any(v is None for v in values):
        return "-"
    digits = 3 if max(values) < 1 else 1
    sd = f"{statistics.stdev(values):.{digits}f}" if len(values) > 1 else "n/a"
    return f"{statistics.mean(values):.{digits}f} ± {sd}"


def inception_scores(checkpoint: Path, samples: int) -> dict[str, float]:
    """The Inception metrics of a clean-data checkpoint, scored here with the evaluate stage's
    code against this project's reference features (the device lacks the Inception weights)."""
    from omegaconf import OmegaConf

    from datamatters.data.contract import read_stage_data
    from datamatters.metrics.evaluation import evaluate_generator
    from datamatters.models.checkpoint import load_checkpoint

    config = OmegaConf.load(ROOT / "params.yaml").eval.metrics
    config.inception_samples = samples
    started = time.perf_counter()
    metrics = evaluate_generator(
        load_checkpoint(checkpoint),
        load_checkpoint(ROOT / "models" / "judge.pt"),
        ROOT / "data" / "reference_features",
        config,
        read_stage_data(ROOT / "data" / "augmented").images,
    )
    scores = {k: v for k, v in metrics.items() if "inception" in k}
    print(f"{checkpoint.stem}: {scores} in {time.perf_counter() - started:.0f} s", flush=True)
    return scores


TRACED_METRICS = ["fid_judge_1k", "precision_judge_1k", "memorization_judge_1k"]


def sweep_experiments(runs: list[dict], name: str) -> list:
    """The default-budget runs as the trace's experiments of one set `name`."""
    from datamatters.trace.experiments import EVALUATE, Experiment, flatten

    sweep = [r for r in runs if round(r["kimg"], 2) == DEFAULT_KIMG]
    return [
        Experiment(
            name=f"{name}-{index}",
            rev=f"{index:040d}",
            baseline="device",
            timestamp="",
            params=flatten(r["params"]),
            metrics={EVALUATE: {k: v for k, v in r.items() if isinstance(v, int | float)}},
        )
        for index, r in enumerate(sweep, 1)
    ]


def trace_sweep(runs: list[dict], name: str, out_dir: Path) -> Path:
    """The default-budget runs as one set of experiments, traced as `datamatters trace` traces a
    DVC sweep: the same axes, pooled seed noise and simultaneous intervals."""
    from omegaconf import OmegaConf

    from datamatters.trace.experiments import flatten
    from datamatters.trace.report import write_trace

    experiments = sweep_experiments(runs, name)
    defaults = flatten(OmegaConf.to_container(OmegaConf.load(ROOT / "params.yaml")))
    path = write_trace(experiments, [name], defaults, out_dir, TRACED_METRICS)
    device = next(r["device"] for r in runs if round(r["kimg"], 2) == DEFAULT_KIMG)
    note = (
        f"> These {len(experiments)} runs ran through `benchmarks/device_runs.py` on "
        f"{device}, not as DVC experiments: they have no `dvc.lock` md5s, and the "
        "lineage commands at the end do not apply to them.\n\n"
    )
    text = path.read_text()
    title, rest = text.split("\n", 1)
    path.write_text(f"{title}\n\n{note}{rest.lstrip()}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("--bundle", type=Path, default=ROOT / ".bundle")
    p.add_argument("--plan", choices=list(PLANS), default="flow")
    r = commands.add_parser("run")
    r.add_argument("--bundle", type=Path, default=ROOT / ".bundle")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--jobs", type=int, default=8)
    r.add_argument("--deadline", type=float, default=470, help="seconds for every run together")
    r.add_argument("--accelerator", help="instead of the params' (cpu for a trial run here)")
    r.add_argument("--only", nargs="+", help="these runs of the plan alone")
    one = commands.add_parser("train-one")
    one.add_argument("--bundle", type=Path, required=True)
    one.add_argument("--name", required=True)
    one.add_argument("--out", type=Path, required=True)
    one.add_argument("--seconds", type=float, required=True)
    one.add_argument("--accelerator")
    rep = commands.add_parser("report")
    rep.add_argument("results", type=Path)
    rep.add_argument("--bundle", type=Path, default=ROOT / ".bundle")
    rep.add_argument("--out", type=Path, help="a folder for the tables, the trace and results")
    rep.add_argument("--scores", type=Path, help="the JSON `score` wrote for kept checkpoints")
    rep.add_argument("--trace", action="store_true", help="trace the default-budget runs")
    sc = commands.add_parser("score", help="Inception metrics of clean-data checkpoints, as JSON")
    sc.add_argument("checkpoints", type=Path, nargs="+")
    sc.add_argument("--inception", type=int, default=500)
    sc.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.bundle, PLANS[args.plan]())
    elif args.command == "run":
        run_all(args.bundle, args.out, args.jobs, args.deadline, args.accelerator, args.only)
    elif args.command == "train-one":
        train_one(args.bundle, args.name, args.out, args.seconds, args.accelerator)
    elif args.command == "score":
        scores = {c.stem: inception_scores(c, args.inception) for c in args.checkpoints}
        args.out.write_text(json.dumps(scores, indent=1) + "\n")
    else:
        runs = with_params(args.results, args.bundle)
        if args.scores:
            scores = json.loads(args.scores.read_text())
            for run in runs:
                run.update(scores.get(run["name"], {}))
        text = report(runs, args.results.parent / "runs.tar")
        print(text)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "runs.md").write_text(text + "\n")
            (args.out / "results.json").write_text(json.dumps(runs, indent=1) + "\n")
            if args.trace:
                print(f"wrote {trace_sweep(runs, args.out.name, args.out)}")


if __name__ == "__main__":
    main()
