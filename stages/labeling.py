"""DVC stage `labeling`: audit given labels, fill in missing ones, record where each came from."""

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
import lightning as L

from datamatters.atomic import write_json
from datamatters.data.contract import read_stage_data, write_stage_data
from datamatters.errors import InputError
from datamatters.labeling.audit import StartMismatch
from datamatters.labeling.labels import audit_labels, carry_labels
from datamatters.labeling.report import label_report, write_confusion_rows
from datamatters.models.checkpoint import load_stage_input
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "input", "judge", "output", "metrics", "confusion")

    labeling = load_params("labeling")["labeling"]
    L.seed_everything(labeling.audit.seed, workers=True, verbose=False)
    data = read_stage_data(args.input, columns=("id", "label", "keep", "issues"))
    start = None
    if labeling.audit.start_from_judge:
        start = load_stage_input(args.judge)
    try:
        labeled, summary = audit_labels(
            carry_labels(data, labeling.classes, args.input), labeling, start
        )
    except StartMismatch as err:
        raise InputError(
            args.judge,
            str(err),
            "give judge and labeling.audit.classifier the same network settings, or set "
            "labeling.audit.start_from_judge=false with labeling.audit.classifier.max_epochs=6",
        ) from err
    report = label_report(labeled.manifest, summary)
    write_stage_data(args.output, labeled, pixels=False)
    write_json(args.metrics, report)
    write_confusion_rows(labeled.manifest, summary.classes, args.confusion)
    log.info(
        "%d kept images labeled, %d unlabeled; audit of %d: %d label issues (%s), "
        "estimated noise rate %s, %d auto-labeled",
        report["kept_labeled"],
        report["kept_unlabeled"],
        report["audited"],
        report["label_issues"],
        labeling.audit.action,
        report["estimated_noise_rate"],
        report["auto_labeled"],
    )
    if "label_flip_precision" in report:
        log.info(
            "against injected label flips: precision %s, recall %s",
            report["label_flip_precision"],
            report["label_flip_recall"],
        )


if __name__ == "__main__":
    run_stage("labeling", main)
