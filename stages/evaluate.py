"""DVC stage `evaluate`: FID, KID and IS of generated samples against the reference split."""

from datamatters.atomic import write_json
from datamatters.data.contract import read_stage_data
from datamatters.metrics.evaluation import evaluate_generator
from datamatters.models.checkpoint import load_checkpoint
from datamatters.stage import StageError, load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "generator", "judge", "reference", "metrics")

    cfg = load_params("evaluate", "eval.metrics")["eval.metrics"]
    reference = read_stage_data(args.reference, stage="evaluate", producer="ingest")
    generator, judge = checkpoint(args.generator, "train"), checkpoint(args.judge, "judge")
    metrics = evaluate_generator(generator, judge, reference, cfg, args.reference)
    write_json(args.metrics, metrics)
    log.info("  ".join(f"{name}={value:.4g}" for name, value in metrics.items()))


def checkpoint(path: str, producer: str):
    try:
        return load_checkpoint(path)
    except (FileNotFoundError, ValueError) as err:
        raise StageError("evaluate", path, str(err), f"run `dvc repro {producer}`") from err


if __name__ == "__main__":
    run_stage("evaluate", main)
