"""DVC stage `judge`: the domain classifier whose features measure generated images.

It sees only the kept rows of the held-out reference split, so it never changes when training
data does.
"""

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
import lightning as L

from datamatters.atomic import write_json
from datamatters.data.contract import BASE_COLUMNS, kept_rows, read_stage_data
from datamatters.models.checkpoint import save_checkpoint
from datamatters.models.judge_training import fit_judge
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "reference", "checkpoint", "metrics")

    judge = load_params("judge")["judge"]
    L.seed_everything(judge.seed, workers=True, verbose=False)
    reference = read_stage_data(args.reference, columns=(*BASE_COLUMNS, "keep"))
    fitted = fit_judge(kept_rows(reference), judge, args.reference)
    save_checkpoint(fitted.network, fitted.network_config, args.checkpoint)
    write_json(args.metrics, fitted.report)
    log.info(
        "accuracy %.4f on %d held-out reference images; FID(judge) between reference halves %.3f",
        fitted.report["accuracy_holdout"],
        fitted.report["holdout_images"],
        fitted.report["fid_judge_ref_halves"],
    )


if __name__ == "__main__":
    run_stage("judge", main)
