"""The `datamatters` command: helpers around the DVC pipeline."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from datamatters.config import CONFIG_DIR, write_params
from datamatters.stage import PARAMS_FILE


def _params(args: argparse.Namespace) -> int:
    if not (args.config_dir / "config.yaml").is_file():
        print(
            f"no {args.config_dir}/config.yaml here: run in the project root or pass --config-dir"
        )
        return 2
    if not args.check:
        write_params(args.output, args.overrides, args.config_dir)
        print(f"wrote {args.output} from {args.config_dir}/ {' '.join(args.overrides)}".rstrip())
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        expected = Path(tmp) / "params.yaml"
        write_params(expected, args.overrides, args.config_dir)
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != expected.read_text(encoding="utf-8"):
            print(
                f"{args.output} differs from the composition of {args.config_dir}/: "
                "run `datamatters params`"
            )
            return 1
    print(f"{args.output} matches {args.config_dir}/")
    return 0


def _fid(args: argparse.Namespace) -> int:
    import time

    from datamatters.metrics.folder_fid import folder_fid

    started = time.perf_counter()
    value = folder_fid(
        args.dir_a, args.dir_b, args.features, args.batch_size, args.judge, args.device
    )
    print(f"FID ({args.features} features): {value:.6f}")
    print(f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def _ablation(args: argparse.Namespace) -> int:
    import shlex

    from datamatters.trace.ablation import ablation_commands, queue_ablation

    commands = ablation_commands(args.name, args.set_param, args.seeds, args.baseline_seeds)
    for command in commands:
        print(shlex.join(command))
    if not args.dry_run:
        queue_ablation(commands)
        print(f"queued {len(commands)} experiments: start them with `dvc queue start`")
    return 0


def _committed(params: Path) -> str:
    """params.yaml as committed at HEAD: a plain `dvc exp run` leaves the last experiment's
    params in the workspace, which are not the defaults its knobs were varied from."""
    import subprocess

    shown = subprocess.run(
        ["git", "show", f"HEAD:{params.as_posix()}"], capture_output=True, text=True
    )
    return shown.stdout if shown.returncode == 0 else params.read_text(encoding="utf-8")


def _trace(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from datamatters.trace.experiments import flatten, load_experiments
    from datamatters.trace.report import write_trace

    defaults = flatten(OmegaConf.to_container(OmegaConf.create(_committed(args.params))))
    report = write_trace(load_experiments(), args.sets, defaults, args.out, args.metric or ())
    print(f"wrote {report}")
    return 0


def _exps(args: argparse.Namespace) -> int:
    from datamatters.trace.experiments import load_experiments, resolve_sets
    from datamatters.trace.overview import overview_rows, render, render_csv

    experiments = load_experiments()
    if args.names:
        experiments = [
            exp for _, members in resolve_sets(experiments, args.names) for exp in members
        ]
    if not experiments:
        print("no finished experiment here: run some with `dvc exp run`")
        return 1
    header, rows = overview_rows(experiments, every_metric=args.all)
    print(render_csv(header, rows) if args.csv else render(header, rows))
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from datamatters.trace.experiments import load_experiments
    from datamatters.trace.lineage import find, removed_images, summary

    exp = find(load_experiments(), args.experiment)
    removed = removed_images(exp)
    out = args.out or Path("reports") / "lineage" / f"{exp.name}-removed.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    removed.to_csv(out, index=False)
    print("\n".join([*summary(exp, removed), f"wrote {out}"]))
    return 0


def _used_by(args: argparse.Namespace) -> int:
    from datamatters.trace.experiments import load_experiments
    from datamatters.trace.lineage import used_by

    found = used_by(load_experiments(), args.md5)
    for exp, path in found:
        print(f"{exp.name}\t{exp.rev[:7]}\t{path}\t{exp.outs[path]}")
    if not found:
        print(f"no finished experiment has an output with md5 {args.md5}...")
        return 1
    return 0


def _disk(args: argparse.Namespace) -> int:
    from datamatters.storage import project_usage, render

    if not (args.project / "dvc.yaml").is_file():
        raise FileNotFoundError(
            f"{args.project / 'dvc.yaml'} does not exist: run this in the project"
        )
    print(render(project_usage(args.project.resolve())))
    return 0


def _deps(args: argparse.Namespace) -> int:
    from datamatters import deps

    root = args.project.resolve()
    if args.write:
        changed = deps.write(root)
        print(f"rewrote the source deps of {', '.join(changed)}" if changed else "dvc.yaml exact")
        return 0
    found = deps.problems(root)
    for problem in found:
        print(problem)
    if found:
        print("fix: datamatters deps --write (it keeps every other dep and comment)")
        return 1
    print("dvc.yaml lists exactly the sources each stage can run")
    return 0


def _queue(args: argparse.Namespace) -> int:
    from datamatters.queue import drain

    tasks = drain(Path("."), args.jobs, args.poll)
    if not tasks:
        print("no experiment in the queue: add some with `dvc exp run --queue -S ...`")
        return 0
    for name, status in tasks.items():
        print(f"  {status:<8} {name}")
    failed = [name for name, status in tasks.items() if status != "Success"]
    if failed:
        print(f"{len(failed)} did not succeed; see why with `dvc queue logs <name>`")
        return 1
    return 0


def _load_generator(path: Path):
    from datamatters.models.checkpoint import load_checkpoint
    from datamatters.models.generative import GenerativeModule

    model = load_checkpoint(path)
    if not isinstance(model, GenerativeModule):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a generator")
    return model


def _sample(args: argparse.Namespace) -> int:
    from datamatters.models.serving import class_ids, write_samples

    model = _load_generator(args.checkpoint)
    labels = class_ids(model, args.class_name, args.n)
    images = model.sample(args.n, seed=args.seed, labels=labels)
    write_samples(images, args.out)
    print(f"wrote {args.n} samples (seed {args.seed}) to {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from datamatters.models.serving import export

    report = export(_load_generator(args.checkpoint), args.out)
    for kind in ("torchscript", "onnx"):
        difference = getattr(report, f"{kind}_max_abs_diff")
        print(
            f"wrote {getattr(report, kind)}: max abs difference {difference:.2e} from the "
            f"checkpoint on {report.samples} seeded latents"
        )
    worst = max(report.torchscript_max_abs_diff, report.onnx_max_abs_diff)
    if worst > args.tolerance:
        print(f"error: an export differs by more than {args.tolerance:g}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="datamatters", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    params = sub.add_parser(
        "params", help="compose conf/ into params.yaml (what `dvc exp run` does before running)"
    )
    params.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. model=vae trainer.max_epochs=2"
    )
    params.add_argument("-o", "--output", type=Path, default=PARAMS_FILE)
    params.add_argument("--config-dir", type=Path, default=CONFIG_DIR)
    params.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    params.set_defaults(func=_params)
    fid = sub.add_parser("fid", help="FID between two folders of images")
    fid.add_argument("dir_a", type=Path, help="reference images")
    fid.add_argument("dir_b", type=Path, help="images to measure")
    fid.add_argument(
        "--features",
        choices=["inception", "judge"],
        default="inception",
        help="the standard FID Inception-v3 (offline weights), or this pipeline's judge",
    )
    fid.add_argument("--batch-size", type=int, default=50)
    fid.add_argument("--judge", type=Path, default=Path("models/judge.pt"))
    fid.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    fid.set_defaults(func=_fid)
    ablation = sub.add_parser(
        "ablation",
        help="queue the pipeline with each quality check and the label audit off, one at a time",
    )
    ablation.add_argument("-n", "--name", default="ablation", help="the experiment set's name")
    ablation.add_argument(
        "-S",
        "--set-param",
        action="append",
        default=[],
        help="an override every arm shares, e.g. ingest.corrupt.mixed=0.2 (repeatable)",
    )
    ablation.add_argument("--seeds", type=int, nargs="+", default=[0], help="train.seed per arm")
    ablation.add_argument(
        "--baseline-seeds", type=int, nargs="+", default=[0, 1], help="train.seed, all filters on"
    )
    ablation.add_argument("--dry-run", action="store_true", help="print the commands only")
    ablation.set_defaults(func=_ablation)
    trace = sub.add_parser(
        "trace", help="write reports/trace.md: experiment sets from data knobs to output metrics"
    )
    trace.add_argument(
        "sets",
        nargs="*",
        help="sets (the -n of `dvc exp run --queue -n NAME` on a grid) or experiments' own names, "
        "which are traced together; default: every experiment here",
    )
    trace.add_argument(
        "--metric",
        action="append",
        help="a metric to give verdicts on (repeatable; default: the judge FID); the first leads",
    )
    trace.add_argument("--out", type=Path, default=Path("reports"))
    trace.add_argument(
        "--params",
        type=Path,
        default=PARAMS_FILE,
        help="the defaults that knobs are compared to (as committed at HEAD)",
    )
    trace.set_defaults(func=_trace)
    exps = sub.add_parser(
        "exps",
        help="experiments on one screen: the params that differ and the headline metrics",
    )
    exps.add_argument("names", nargs="*", help="sets or experiments (default: all)")
    exps.add_argument("--all", action="store_true", help="every metric, not only the headline")
    exps.add_argument("--csv", action="store_true", help="comma-separated, full column names")
    exps.set_defaults(func=_exps)
    lineage = sub.add_parser(
        "lineage", help="an experiment's data versions and the images its filters removed"
    )
    lineage.add_argument("experiment", help="its name, or a prefix of its commit")
    lineage.add_argument("--out", type=Path, help="CSV of removed images")
    lineage.set_defaults(func=_lineage)
    deps = sub.add_parser(
        "deps", help="check dvc.yaml's source deps against what each stage imports (or --write)"
    )
    mode = deps.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if one is wrong (default)")
    mode.add_argument("--write", action="store_true", help="rewrite dvc.yaml's source deps")
    deps.add_argument("--project", type=Path, default=Path("."))
    deps.set_defaults(func=_deps)
    queue = sub.add_parser(
        "queue",
        help="run DVC's experiment queue to the end (restarting workers that stop early)",
    )
    queue.add_argument("-j", "--jobs", type=int, default=1, help="workers, as dvc queue start -j")
    queue.add_argument("--poll", type=float, default=5.0, help="seconds between status checks")
    queue.set_defaults(func=_queue)
    disk = sub.add_parser(
        "disk", help="what the workspace, DVC's cache and each remote hold, and how to trim them"
    )
    disk.add_argument("--project", type=Path, default=Path("."))
    disk.set_defaults(func=_disk)
    used = sub.add_parser("used-by", help="experiments whose outputs have this dvc.lock md5")
    used.add_argument("md5", help="an md5 from dvc.lock, or its first characters")
    used.set_defaults(func=_used_by)
    sample = sub.add_parser("sample", help="draw images from a trained generator's checkpoint")
    sample.add_argument("checkpoint", type=Path, help="e.g. models/generator.pt")
    sample.add_argument("--n", type=int, default=64, help="how many images")
    sample.add_argument("--seed", type=int, default=0, help="the latents' seed")
    sample.add_argument(
        "--class", dest="class_name", help="a conditional model's class name, e.g. 7"
    )
    sample.add_argument(
        "--out",
        type=Path,
        default=Path("samples.png"),
        help="a .png grid, a .npy array (uint8 N×H×W×C), or a folder of PNGs",
    )
    sample.set_defaults(func=_sample)
    export = sub.add_parser(
        "export", help="the generator as TorchScript and ONNX, checked against the checkpoint"
    )
    export.add_argument("checkpoint", type=Path, help="e.g. models/generator.pt")
    export.add_argument("--out", type=Path, default=Path("models/export"))
    export.add_argument(
        "--tolerance", type=float, default=1e-5, help="exit 1 beyond this max abs difference"
    )
    export.set_defaults(func=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The one error boundary: what a user can fix (a missing file, a bad value, a trace that
    cannot be built) is one line and exit status 2; anything else keeps its traceback."""
    from datamatters.errors import InputError
    from datamatters.trace.experiments import TraceError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, InputError, TraceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
