"""DVC stage `real_floor`: real images measured exactly as `evaluate` measures a generator.

No generator can be expected to beat real images of its own domain, so each output metric is read
against what a clean sample of the train pool scores under the same protocol (the same counts,
extractors, bootstrap and seed). The sample is drawn before any corruption, so no data knob of an
experiment moves it.
"""

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
import torch

from datamatters.atomic import write_json
from datamatters.data.contract import read_stage_data
from datamatters.errors import InputError
from datamatters.metrics.evaluation import measure_images
from datamatters.models.checkpoint import load_stage_input
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "images", "judge", "reference-features", "metrics")

    cfg = load_params("eval.metrics")["eval.metrics"]
    real = read_stage_data(args.images)
    if len(real.images) < cfg.num_samples:
        raise InputError(
            args.images,
            f"{len(real.images)} real images, but eval.metrics.num_samples={cfg.num_samples}",
            "raise ingest.real_sample to at least eval.metrics.num_samples and `dvc repro`",
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    judge = load_stage_input(args.judge).to(device)
    images = real.images[: cfg.num_samples]
    metrics = measure_images(images, judge, args.reference_features, cfg).scores
    write_json(args.metrics, metrics)
    numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
    log.info("real data: " + "  ".join(f"{name}={value:.4g}" for name, value in numbers.items()))


if __name__ == "__main__":
    run_stage("real_floor", main)
