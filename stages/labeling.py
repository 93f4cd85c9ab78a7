"""DVC stage `labeling`: the labels training uses, with their provenance."""

from datamatters.atomic import write_json
from datamatters.data.contract import read_stage_data, write_stage_data
from datamatters.labeling.labels import carry_labels, label_report
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "input", "output", "metrics")

    labeling = load_params("labeling", "labeling")["labeling"]
    data = read_stage_data(
        args.input, stage="labeling", producer="quality", columns=("id", "label", "keep", "issues")
    )
    labeled = carry_labels(data, labeling.classes, args.input)
    write_stage_data(args.output, labeled)
    report = label_report(labeled.manifest)
    write_json(args.metrics, report)
    log.info(
        "%d kept images labeled, %d unlabeled, %d classes",
        report["kept_labeled"],
        report["kept_unlabeled"],
        len(report["kept_per_class"]),
    )


if __name__ == "__main__":
    run_stage("labeling", main)
