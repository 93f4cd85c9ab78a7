"""DVC stage `train`: fit the model chosen by `model=` on the materialised training set."""

from pathlib import Path

import _workspace  # noqa: F401 - first: this workspace's package, not an installed one
import lightning as L
from dvclive.lightning import DVCLiveLogger
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf

import datamatters
from datamatters.errors import InputError
from datamatters.features import reference_cache
from datamatters.models import resume
from datamatters.models.callbacks import EpochFID, SampleGrid
from datamatters.models.checkpoint import load_stage_input, save_checkpoint
from datamatters.models.generative import images_budget, with_classes
from datamatters.models.progress import EpochSummary
from datamatters.models.resume import ResumeCheckpoint
from datamatters.stage import load_params, log, parse_paths, run_stage


def main() -> None:
    args = parse_paths(
        __doc__,
        "data",
        "judge",
        "reference-features",
        "checkpoint",
        "live-dir",
        "samples",
        "resume-dir",
    )

    params = load_params("model", "trainer", "datamodule", "train")
    L.seed_everything(params["train"].seed, workers=True, verbose=False)
    conditional = "classes" in params["model"]
    datamodule = instantiate(
        params["datamodule"],
        data_dir=args.data,
        seed=params["train"].seed,
        labeled_only=conditional,
    )
    model_config = params["model"]
    if conditional:
        model_config = with_classes(model_config, classes_to_learn(datamodule, args.data))
    model = instantiate(model_config)
    check_shapes(model, datamodule.image_shape, args.data)
    log.info(
        "%s on %d images of %s",
        type(model).__name__,
        len(datamodule.data.images),
        datamodule.image_shape,
    )

    inputs = [args.data]
    callbacks = [SampleGrid(args.samples), EpochSummary()]
    if params["train"].fid_samples:
        inputs += [args.judge, args.reference_features]
        judge = load_stage_input(args.judge)
        reference, _ = reference_cache.load(args.reference_features, "judge")
        callbacks.insert(0, EpochFID(judge, reference, params["train"].fid_samples))
    callbacks.append(ResumeCheckpoint(args.resume_dir, params["train"].checkpoint_every_n_steps))
    last = resume_point(args.resume_dir, params, inputs)
    # DVC deletes metrics/train before the stage runs, so the curve is logged beside the resume
    # checkpoint and published to metrics/train when training ends.
    logger = DVCLiveLogger(
        dir=str(Path(args.resume_dir) / resume.LIVE),
        dvcyaml=False,
        save_dvc_exp=False,
        resume=last is not None,
    )
    trainer = instantiate(params["trainer"], logger=logger, callbacks=callbacks)
    budget = images_budget(
        params["train"].kimg, params["datamodule"].batch_size, trainer.world_size
    )
    trainer.fit_loop.epoch_loop.max_steps = model.optimizer_steps(budget)
    trainer.fit(model, datamodule=datamodule, ckpt_path=last, weights_only=True)
    if trainer.is_global_zero:  # under DDP every process holds the same weights: one writes
        save_checkpoint(model, OmegaConf.to_container(model_config, resolve=True), args.checkpoint)
        resume.finish(args.resume_dir, args.live_dir)
        log.info("wrote %s after %d steps", args.checkpoint, trainer.global_step)


def resume_point(directory: str, params: dict, inputs: list[str]) -> Path | None:
    """The checkpoint a killed run with these params, inputs and code left, if any."""
    plain = {key: OmegaConf.to_container(value, resolve=True) for key, value in params.items()}
    code = [Path(__file__), Path(datamatters.__file__).parent]
    key = resume.fingerprint(plain, inputs, code)
    if rank_zero_only.rank != 0:  # a DDP worker: rank 0 has already set the directory up
        return resume.existing_point(directory, key)
    last = resume.resume_point(directory, key)
    if last is not None:
        step = resume.checkpoint_step(last)
        log.info("resuming from %s at step %d (same params, data and code)", last, step)
        resume.truncate_live_history(Path(directory) / resume.LIVE, step)
    return last


def classes_to_learn(datamodule, data_dir: str) -> list[str]:
    datamodule.setup()
    if not datamodule.classes:
        raise InputError(
            data_dir,
            "no labeled images, and a conditional model (model=cdcgan or cvae) learns from labels",
            "label the images (one sub-folder per class, or let labeling.autolabel fill them in), "
            "or train an unconditional model: -S model=dcgan",
        )
    return datamodule.classes


def check_shapes(model, data_shape: tuple[int, int, int], data_dir: str) -> None:
    """A model composed for other data settings fails here, before any training time is spent."""
    height, width, channels = data_shape
    made = tuple(model.sample(1, seed=0).shape[1:])
    if made != (channels, height, width):
        raise InputError(
            data_dir,
            f"the model makes C×H×W={made} images but the data is {(channels, height, width)}",
            "re-compose params.yaml (`datamatters params`) so model and data settings agree",
        )


if __name__ == "__main__":
    run_stage("train", main)
