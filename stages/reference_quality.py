"""DVC stage `reference_quality`: the held-out reference split checked once: a clean yardstick.

Every output metric is measured against the kept rows of `data/reference`. The checks are the
quality stage's, at their defaults, under `reference.quality`, which no sweep knob touches. The
density check compares appearance features alone here: the judge is trained on this stage's
output, so it cannot be used to decide it.
"""

from pathlib import Path

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
from hydra.utils import instantiate

from datamatters.data.contract import read_stage_data
from datamatters.parallel import use_executor
from datamatters.quality.assess import assess, configured_checks
from datamatters.quality.checks import QualityContext
from datamatters.quality.report import write_checked
from datamatters.stage import load_params, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "input", "output", "metrics", "gallery")

    params = load_params("reference.quality", "executor")
    data = read_stage_data(args.input)
    checks = configured_checks(params["reference.quality"], "reference.quality")
    with use_executor(instantiate(params["executor"])):
        assessed, report = assess(data, checks, QualityContext(scratch=Path(args.output).parent))
    write_checked(assessed, report, checks, vars(args))


if __name__ == "__main__":
    run_stage("reference_quality", main)
