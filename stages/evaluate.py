"""DVC stage `evaluate`: FID, KID and IS of generated samples against the reference split."""

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one

from datamatters.atomic import write_json
from datamatters.data.contract import read_stage_data
from datamatters.metrics.evaluation import evaluate_generator
from datamatters.models.checkpoint import load_stage_input
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "generator", "judge", "reference", "metrics")

    cfg = load_params("evaluate", "eval.metrics")["eval.metrics"]
    reference = read_stage_data(args.reference, stage="evaluate", producer="ingest")
    generator = load_stage_input(args.generator, "evaluate", producer="train")
    judge = load_stage_input(args.judge, "evaluate", producer="judge")
    metrics = evaluate_generator(generator, judge, reference, cfg, args.reference)
    write_json(args.metrics, metrics)
    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    log.info("  ".join(f"{name}={value:.4g}" for name, value in numbers.items()))


if __name__ == "__main__":
    run_stage("evaluate", main)
