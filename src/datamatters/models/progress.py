"""One log line per training epoch, for every Lightning module of the pipeline.

Kept apart from the generator callbacks so the judge and the label audit do not depend on the
generator's code (a generator edit must not re-run them).
"""

from __future__ import annotations

import logging
import time

import lightning as L

log = logging.getLogger("datamatters")


class EpochSummary(L.Callback):
    """One INFO line per epoch with every epoch-level metric and the epoch's wall time."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        elapsed = time.perf_counter() - self._started
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        parts = [f"epoch {trainer.current_epoch + 1}{total}"]
        parts += [f"{name}={value:.3f}" for name, value in epoch_metrics(trainer).items()]
        parts.append(f"({elapsed:.1f} s)")
        log.info(" ".join(parts))


def epoch_metrics(trainer: L.Trainer) -> dict[str, float]:
    """Scalar callback metrics under their plain names, preferring epoch means to last steps."""
    metrics = trainer.callback_metrics
    names = sorted({k.removesuffix("_epoch").removesuffix("_step") for k in metrics})
    result = {}
    for name in names:
        value = metrics.get(f"{name}_epoch", metrics.get(name))
        if value is not None and value.numel() == 1:
            result[name] = float(value)
    return result
