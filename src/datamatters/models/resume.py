"""Training that survives a crash: a resumable checkpoint every N steps, kept outside DVC's outputs.

DVC deletes a stage's outputs before it runs the stage again, so the resume state lives in a
directory the train stage owns (`checkpoints/train`, ignored by git and DVC). It is tied to a
fingerprint of everything the result depends on (the stage's params, its input files and the
package's code): a re-run with the same fingerprint continues from the last checkpoint, anything
else starts fresh. A run that finishes deletes it, so `dvc repro -f` retrains from step 0.

On the CPU a resumed run ends with the same weights, bit for bit, as one never interrupted: the
Lightning checkpoint carries the model (averaged weights included), the optimizers and the loop
state, and this module adds what Lightning leaves out, the global random generators (the latents
of the next batch) and the data loader's place in its epoch (`ResumableDataLoader`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

log = logging.getLogger("datamatters")

CHECKPOINT = "last.ckpt"
FINGERPRINT = "fingerprint.json"
LIVE = "live"


def rng_states() -> dict[str, Any]:
    """The global generators, as plain data and tensors (loadable with weights_only=True)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": position,
            "has_gauss": has_gauss,
            "gauss": gauss,
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    numpy = states["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["gauss"],
        )
    )
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumeCheckpoint(L.Callback):
    """Save a resumable Lightning checkpoint to `directory/last.ckpt` every `every_n_steps` steps.

    Written to a temporary file and renamed, so a kill mid-write leaves the previous checkpoint.
    The global generators are saved with it and set again just before the first batch after a
    resume, which is where an uninterrupted run would draw from them next.
    """

    def __init__(self, directory: str | os.PathLike[str], every_n_steps: int) -> None:
        if every_n_steps < 1:
            raise ValueError(f"train.checkpoint_every_n_steps must be >= 1, got {every_n_steps}")
        self.path = Path(directory) / CHECKPOINT
        self.every_n_steps = every_n_steps
        self._pending_rng: dict[str, Any] | None = None
        self._saved_step = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        # Lightning resumes a checkpoint taken on an epoch's last batch into the wrong epoch,
        # so such a checkpoint waits for the next epoch's first batch.
        last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if step // self.every_n_steps > self._saved_step // self.every_n_steps and not last_batch:
            self._saved_step = step
            tmp = self.path.with_name(f".{CHECKPOINT}.tmp")
            trainer.save_checkpoint(tmp, weights_only=False)  # optimizers and loops too
            if trainer.is_global_zero:
                os.replace(tmp, self.path)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["datamatters_rng"] = rng_states()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        self._pending_rng = checkpoint.get("datamatters_rng")
        self._saved_step = trainer.global_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending_rng is not None:
            set_rng_states(self._pending_rng)
            self._pending_rng = None


def fingerprint(
    params: dict[str, Any],
    inputs: list[str | os.PathLike[str]],
    code: list[str | os.PathLike[str]],
) -> str:
    """A digest of what a training run's result depends on: params, input files and code."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    files = []
    for path in map(Path, [*inputs, *code]):
        files += sorted(path.rglob("*")) if path.is_dir() else [path]
    files = [f for f in files if "__pycache__" not in f.parts]
    for path in files:
        if path.is_file():
            digest.update(str(path).encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def resume_point(directory: str | os.PathLike[str], key: str) -> Path | None:
    """The checkpoint to resume from, if the directory holds one for this fingerprint.

    A directory left by other params, data or code is cleared, so training starts fresh.
    """
    directory = Path(directory)
    if _stamped(directory, key):
        return existing_point(directory, key)
    if directory.exists():
        log.info("params, data or code changed since %s was saved: training from step 0", directory)
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / FINGERPRINT).write_text(json.dumps({"fingerprint": key}) + "\n")
    return None


def existing_point(directory: str | os.PathLike[str], key: str) -> Path | None:
    """`resume_point` for a process that must not change the directory (a DDP worker)."""
    checkpoint = Path(directory) / CHECKPOINT
    return checkpoint if _stamped(Path(directory), key) and checkpoint.is_file() else None


def _stamped(directory: Path, key: str) -> bool:
    stamp = directory / FINGERPRINT
    return stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == key


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def truncate_live_history(live_dir: str | os.PathLike[str], step: int) -> None:
    """Drop DVCLive rows logged after `step`: the killed run logged them, the resumed one will."""
    for table in Path(live_dir).glob("plots/metrics/**/*.tsv"):
        rows = pd.read_csv(table, sep="\t")
        if "step" in rows:
            rows[rows["step"] <= step].to_csv(table, sep="\t", index=False)


def finish(directory: str | os.PathLike[str], live_dir: str | os.PathLike[str]) -> None:
    """A finished run: publish its DVCLive directory and delete the resume state."""
    target = Path(live_dir)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(Path(directory) / LIVE, target)
    shutil.rmtree(directory)
