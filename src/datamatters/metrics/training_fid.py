"""FID on judge features after every training epoch: the curve of output quality over training.

Cheap enough to run each epoch (a few hundred samples through the small judge, against the
reference features cached by the `reference_features` stage); logged through the trainer's
logger, so DVCLive writes it beside the losses and `dvc plots` draws it.
"""

from __future__ import annotations

import lightning as L
import numpy as np

from datamatters.metrics.generative import extract, fid, sample_tag, to_uint8
from datamatters.metrics.judge_features import JudgeFeatures
from datamatters.models.generative import GenerativeModule
from datamatters.models.networks import JudgeNet

SEED = 1_000_003  # not the evaluate stage's seed: these samples are for the curve only


class EpochFID(L.Callback):
    def __init__(self, judge: JudgeNet, reference: np.ndarray, num_samples: int = 500) -> None:
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {num_samples}")
        self.extractor = JudgeFeatures(judge.eval())
        self.reference = reference
        self.num_samples = num_samples
        self.name = f"fid_judge_{sample_tag(num_samples)}"

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not isinstance(pl_module, GenerativeModule):
            raise TypeError(f"EpochFID needs a GenerativeModule, got {type(pl_module).__name__}")
        self.extractor.to(pl_module.device)
        fake = to_uint8(pl_module.sample(self.num_samples, seed=SEED))
        value = fid(self.reference, extract(self.extractor, fake))
        pl_module.log(self.name, value, on_step=False, on_epoch=True)
