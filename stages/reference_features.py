"""DVC stage `reference_features`: each extractor's features of the reference split, once.

Depends on the reference split and the extractors only; evaluate measures against these rows.
"""

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
import torch

from datamatters.data.contract import BASE_COLUMNS, kept_rows, read_stage_data
from datamatters.errors import InputError
from datamatters.features import reference_cache
from datamatters.features.inception import InceptionFeatures
from datamatters.features.judge import JudgeFeatures
from datamatters.models.checkpoint import load_stage_input
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "reference", "judge", "output")

    cfg = load_params("eval.reference")["eval.reference"]
    reference = read_stage_data(
        args.reference,
        columns=(*BASE_COLUMNS, "keep"),
    )
    kept = kept_rows(reference)
    judge = load_stage_input(args.judge)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log.info(
        "features of the %d kept of %d reference images: judge%s, on %s",
        len(kept.images),
        len(reference.images),
        " and Inception" if cfg.inception else "",
        device,
    )
    extractors = {"judge": JudgeFeatures(judge.to(device))}
    try:
        if cfg.inception:
            extractors["inception"] = InceptionFeatures().to(device)
    except FileNotFoundError as err:
        raise InputError(
            "Inception weights",
            str(err),
            "or set eval.reference.inception=false and eval.metrics.inception_samples=0",
        ) from err
    features = reference_cache.compute(kept, extractors, cfg.batch_size)
    reference_cache.save(args.output, kept, features)
    log.info("wrote %s: %s", args.output, ", ".join(f"{k} {v.shape}" for k, v in features.items()))


if __name__ == "__main__":
    run_stage("reference_features", main)
