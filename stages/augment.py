"""DVC stage `augment`: the training set, the kept labeled rows (pointed at, not copied) and
their augmented copies (materialised)."""

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
from hydra.utils import instantiate

from datamatters.atomic import write_json
from datamatters.augment.materialise import augmented_copies, originals
from datamatters.data.contract import kept_mask, read_stage_data, write_stage_chunks
from datamatters.errors import InputError
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(__doc__, "input", "output", "metrics")

    augment = load_params("augment")["augment"]
    if augment.copies < 0:
        raise InputError("params.yaml", f"augment.copies={augment.copies}", "use 0 or more")
    data = read_stage_data(
        args.input,
        columns=("id", "label", "keep", "label_source"),
    )
    keep = kept_mask(data.manifest)
    if not keep.any():
        raise InputError(
            args.input,
            "no rows are kept, so there is nothing to train on",
            "check metrics/quality.json for what was dropped and relax those checks",
        )
    kept = (data.select(keep).origin, originals(data.manifest, keep))  # pointed at, not read
    copies = augmented_copies(data, keep, instantiate(augment.pipeline), augment.copies)
    count = int(keep.sum()) * augment.copies
    manifest = write_stage_chunks(args.output, copies, count, data.images.shape[1:], kept)
    report = {
        "training_images": len(manifest),
        "originals": int((~manifest["augmented"]).sum()),
    }
    write_json(args.metrics, report)
    log.info("training set: %(training_images)d images from %(originals)d kept originals", report)


if __name__ == "__main__":
    run_stage("augment", main)
