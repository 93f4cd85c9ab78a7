"""DVC stage `ingest`: source images -> data/raw (train pool) + data/reference (held out).

Also writes a seeded sample of the train pool as it was before any corruption
(`data/real_sample`), the real images the `real_floor` stage measures like a generator.
"""

from dataclasses import replace
from pathlib import Path

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
from hydra.utils import instantiate

from datamatters.atomic import write_json
from datamatters.data.contract import write_stage_data
from datamatters.data.corrupt import inject
from datamatters.data.ingest import ingest, real_sample
from datamatters.parallel import use_executor
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "train-out", "reference-out", "real-sample-out", "metrics")

    params = load_params("data", "ingest", "executor")
    data, corrupt = params["data"], params["ingest"]
    source = instantiate(data.source)
    log.info("reading %s", type(source).__name__)
    scratch = Path(args.train_out).parent  # beside the outputs: on disk, and room for them
    scratch.mkdir(parents=True, exist_ok=True)
    with use_executor(instantiate(params["executor"])):
        result = ingest(
            list(source.items()),
            data.image_size,
            data.channels,
            data.reference_fraction,
            data.seed,
            data.limit,
            scratch,
        )
    clean = real_sample(result.train, corrupt.real_sample, data.seed)
    train, injected = inject(result.train, corrupt.corrupt, corrupt.seed, scratch)
    result = replace(result, train=train)
    write_stage_data(args.train_out, result.train)
    write_stage_data(args.reference_out, result.reference)
    write_stage_data(args.real_sample_out, clean)
    metrics = result.metrics() | {f"injected_{kind}": count for kind, count in injected.items()}
    write_json(args.metrics, metrics)
    log.info(
        "%(images)d images: %(train_pool)d train pool, %(reference)d reference, "
        "%(undecodable)d undecodable, %(classes)d classes",
        metrics,
    )


if __name__ == "__main__":
    run_stage("ingest", main)
