"""DVC stage `quality`: score every image on every enabled check and decide `keep`."""

from hydra.utils import instantiate

from datamatters.atomic import write_json
from datamatters.data.contract import read_stage_data, write_stage_data
from datamatters.quality.assess import assess
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "input", "output", "metrics")

    quality = load_params("quality", "quality")["quality"]
    data = read_stage_data(args.input, stage="quality", producer="ingest")
    checks = {name: instantiate(cfg) for name, cfg in quality.checks.items()}
    assessed, report = assess(data, checks)
    write_stage_data(args.output, assessed)
    write_json(args.metrics, report)
    log.info(
        "kept %d of %d images (%.2f%%)",
        report["kept"],
        report["images"],
        100 * report["kept_fraction"],
    )


if __name__ == "__main__":
    run_stage("quality", main)
