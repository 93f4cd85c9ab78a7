"""The label audit: out-of-sample class probabilities by K-fold cross-validation, then cleanlab.

Confident learning needs probabilities from a model that never saw the row it scores, or a
memorised wrong label looks confident. Each fold trains the pipeline's small CNN classifier on the
other folds; the folds' models also vote on unlabeled rows, so auto-labeling needs no extra fit.

Each fold model starts from the judge's weights (the same network, trained on the reference split
only, so it has seen none of the rows it audits) and is fine-tuned for a couple of epochs instead
of trained from scratch for six: on MNIST-5k with 10% flipped labels that is 3x faster and finds
the flips with higher precision and recall (benchmarks/ground_truth.py labels). Where the judge's
classes differ from the audited ones, its head is left out and trained afresh.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import cleanlab.count
import cleanlab.filter
import lightning as L
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig
from sklearn.model_selection import StratifiedKFold
from torch import nn
from torch.utils.data import DataLoader

from datamatters.data.dataset import ImageArrayDataset
from datamatters.data.mapped import read_chunks, rows_per_chunk
from datamatters.models.judge import fit_classifier, predict_proba

log = logging.getLogger("datamatters")
CHUNK_BYTES = 16 * 2**20  # pixels gathered at a time for prediction
PREDICT_BATCH = 256


@dataclass
class Probabilities:
    labeled: np.ndarray  # N×K out-of-sample probabilities of the labeled rows
    unlabeled: np.ndarray  # M×K mean of the fold models' probabilities for unlabeled rows
    fold_accuracy: float  # accuracy of out-of-sample predictions against the given labels


def cross_validated_probabilities(
    images: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    unlabeled_rows: np.ndarray,
    num_classes: int,
    cfg: DictConfig,
    start: nn.Module | None = None,
) -> Probabilities:
    """Out-of-sample probabilities of `images[rows]`, whose classes are `labels`, and the folds'
    mean vote for `images[unlabeled_rows]`.

    `images` may be memory-mapped: every fold reads its rows from it as it trains and predicts,
    and none copies them, so the audit's memory does not grow with the images.
    `cfg`: `folds`, `seed` and `classifier` (network, optimizer, max_epochs, batch_size, ...);
    `start`: a trained network of the classifier's architecture to fine-tune from.
    """
    oof = np.zeros((len(labels), num_classes))
    votes = np.zeros((len(unlabeled_rows), num_classes))
    splits = StratifiedKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed)
    with warnings.catch_warnings():
        # a class with fewer rows than folds is audited on the folds it appears in
        warnings.filterwarnings("ignore", message="The least populated class")
        folds = list(splits.split(np.zeros(len(labels)), labels))
    for fold, (train, held_out) in enumerate(folds):
        log.info("label audit: fold %d/%d, %d training images", fold + 1, len(folds), len(train))
        network = _fit(images, rows[train], labels[train], num_classes, cfg, cfg.seed + fold, start)
        oof[held_out] = predict_rows(network, images, rows[held_out])
        if len(unlabeled_rows):
            votes += predict_rows(network, images, unlabeled_rows) / len(folds)
    accuracy = float((oof.argmax(axis=1) == labels).mean())
    return Probabilities(oof, votes, accuracy)


def predict_rows(network: nn.Module, images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`predict_proba` of `images[rows]`, read a chunk at a time; chunks are whole prediction
    batches, so the numbers are those of one call on the gathered rows."""
    chunk = rows_per_chunk(images, CHUNK_BYTES, multiple=PREDICT_BATCH)
    parts = [
        predict_proba(network, pixels, PREDICT_BATCH)
        for _, pixels in read_chunks(images, rows, chunk)
    ]
    return np.concatenate(parts)


def _fit(
    images: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    cfg: DictConfig,
    seed: int,
    start: nn.Module | None,
):
    L.seed_everything(seed, workers=True, verbose=False)
    classifier = cfg.classifier
    network = instantiate(classifier.network, num_classes=num_classes)
    if start is not None:
        load_matching(network, start)
    loader = DataLoader(
        ImageArrayDataset(images, labels, rows, release_pages=True),
        batch_size=classifier.batch_size,
        shuffle=True,
    )
    return fit_classifier(
        network,
        instantiate(classifier.optimizer),
        loader,
        classifier.max_epochs,
        classifier.max_shift,
        classifier.accelerator,
    )


class StartMismatch(ValueError):
    """The network to fine-tune from is not of the classifier's architecture."""


def load_matching(network: nn.Module, start: nn.Module) -> None:
    """Copy `start`'s weights into `network` wherever names and shapes agree (all but a head for
    other classes); refuse a `start` of another architecture, which would be no start at all."""
    own, given = network.state_dict(), start.state_dict()
    matching = {k: v for k, v in given.items() if k in own and own[k].shape == v.shape}
    if len(matching) < len(own) - 2:  # at most the head's weight and bias may differ
        raise StartMismatch(
            "the judge's network differs from labeling.audit.classifier.network, so the audit "
            "cannot start from it"
        )
    network.load_state_dict(matching, strict=False)


def find_label_issues(labels: np.ndarray, probabilities: np.ndarray, filter_by: str) -> np.ndarray:
    """cleanlab's confident-learning mask of rows whose given label is likely wrong."""
    return cleanlab.filter.find_label_issues(labels, probabilities, filter_by=filter_by, n_jobs=1)


def estimated_noise_rate(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """1 - trace of cleanlab's estimated joint of given and true labels: P(given != true)."""
    return float(1.0 - np.trace(cleanlab.count.estimate_joint(labels, probabilities)))
