"""DVC stage `evaluate`: FID (with its interval), KID, IS and precision/recall of samples.

Measured with the judge's and the standard Inception's features against the reference split's
features, which the `reference_features` stage computed once; the training set is read only to
tell a sample that copies a training image from a new one (`memorization_judge_<n>`).
"""

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
import torch

from datamatters.atomic import write_json
from datamatters.data.contract import read_stage_data
from datamatters.metrics.evaluation import evaluate_generator
from datamatters.models.checkpoint import load_stage_input
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "generator", "judge", "reference-features", "training", "metrics")

    cfg = load_params("eval.metrics")["eval.metrics"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = load_stage_input(args.generator).to(device)
    judge = load_stage_input(args.judge).to(device)
    training = read_stage_data(args.training)
    metrics = evaluate_generator(generator, judge, args.reference_features, cfg, training.images)
    write_json(args.metrics, metrics)
    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    log.info("  ".join(f"{name}={value:.4g}" for name, value in numbers.items()))


if __name__ == "__main__":
    run_stage("evaluate", main)
