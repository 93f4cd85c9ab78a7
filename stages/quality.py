"""DVC stage `quality`: score every image on every enabled check and decide `keep`.

Outliers are judged in the judge's feature space: the judge depends only on the reference split,
so it is a fixed yardstick that no training-data experiment can move.
"""

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
from hydra.utils import instantiate

from datamatters.atomic import write_json
from datamatters.data.contract import read_stage_data, write_stage_data
from datamatters.metrics.judge_features import judge_features
from datamatters.models.checkpoint import load_stage_input
from datamatters.quality.assess import assess
from datamatters.quality.checks import QualityContext
from datamatters.quality.gallery import save_gallery
from datamatters.quality.report import ground_truth_scores, summary_table
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "input", "judge", "output", "metrics", "gallery")

    quality = load_params("quality", "quality")["quality"]
    data = read_stage_data(args.input, stage="quality", producer="ingest")
    checks = {name: instantiate(cfg) for name, cfg in quality.checks.items() if quality.enabled}
    judge = load_stage_input(args.judge, "quality", producer="judge")
    context = QualityContext(features=judge_features(judge, data.images))
    assessed, report = assess(data, checks, context)
    report |= ground_truth_scores(assessed.manifest)
    write_stage_data(args.output, assessed)
    write_json(args.metrics, report)
    save_gallery(assessed.images, assessed.manifest, list(checks), args.gallery)
    actions = {name: check.action if check.enabled else None for name, check in checks.items()}
    for line in summary_table(report, actions).splitlines():
        log.info(line)
    if "precision" in report:
        log.info(
            "against injected ground truth: precision %.3f, recall %.3f, clean dropped %.2f%%",
            report["precision"],
            report["recall"],
            100 * report["clean_dropped_fraction"],
        )


if __name__ == "__main__":
    run_stage("quality", main)
