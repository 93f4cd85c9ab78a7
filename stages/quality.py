"""DVC stage `quality`: score every train-pool image on every enabled check and decide `keep`.

Outliers are judged in the judge's feature space: the judge depends only on the reference split,
so it is a fixed yardstick that no training-data experiment can move. The reference split is read
for one more check, `reference_leak`, configured apart from the filters under study.
"""

from pathlib import Path

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
from hydra.utils import instantiate

from datamatters.data.contract import read_stage_data
from datamatters.features.judge import judge_features
from datamatters.models.checkpoint import load_stage_input
from datamatters.parallel import use_executor
from datamatters.quality.assess import assess, configured_check, configured_checks
from datamatters.quality.checks import QualityContext
from datamatters.quality.report import ground_truth_scores, write_checked
from datamatters.stage import load_params, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "input", "reference", "judge", "output", "metrics", "gallery")

    params = load_params("quality", "reference.leak", "executor")
    data = read_stage_data(args.input)
    reference = read_stage_data(args.reference)
    checks = configured_checks(params["quality"], "quality") | {
        "reference_leak": configured_check(params["reference.leak"], "reference.leak")
    }
    judge = load_stage_input(args.judge)
    features = judge_features(judge, data.images)
    context = QualityContext(features, reference, scratch=Path(args.output).parent)
    with use_executor(instantiate(params["executor"])):
        assessed, report = assess(data, checks, context)
    report |= ground_truth_scores(assessed.manifest)
    write_checked(assessed, report, checks, vars(args))


if __name__ == "__main__":
    run_stage("quality", main)
