"""Ingest: decode every image of a source, split it into a train pool and a held-out reference.

The split is decided by a seeded hash of each image's pixels, so identical images always land on
the same side (no leakage across splits) and adding images never reshuffles existing ones.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datamatters.data.contract import StageData, pixel_sha256
from datamatters.data.decode import DecodeError, decode
from datamatters.data.sources import SourceItem
from datamatters.stage import StageError

log = logging.getLogger("datamatters")

TRAIN, REFERENCE = "train", "reference"
PROGRESS_EVERY = 1000


@dataclass
class IngestResult:
    train: StageData
    reference: StageData

    def metrics(self) -> dict[str, float | int]:
        train, ref = self.train.manifest, self.reference.manifest
        labels = pd.concat([train["label"], ref["label"]]).dropna()
        return {
            "images": len(train) + len(ref),
            "train_pool": len(train),
            "reference": len(ref),
            "undecodable": int(train["decode_error"].notna().sum()),
            "unlabeled": int(train["label"].isna().sum() + ref["label"].isna().sum()),
            "classes": int(labels.nunique()),
        }


def ingest(
    items: list[SourceItem],
    image_size: int,
    channels: int,
    reference_fraction: float,
    seed: int,
    limit: int | None = None,
) -> IngestResult:
    _validate(image_size, channels, reference_fraction)
    items = balanced_head(items, limit) if limit else items
    if not items:
        raise StageError(
            "ingest", "params.yaml", "the source yielded no items", "check data.path / data.limit"
        )
    rows, pixels = _decode_all(items, image_size, channels)
    manifest = pd.DataFrame(rows)
    manifest["label"] = manifest["label"].astype("string")
    manifest["decode_error"] = manifest["decode_error"].astype("string")
    manifest["split"] = _assign_split(manifest, reference_fraction, seed)
    data = StageData(np.stack(pixels), manifest)
    is_reference = (manifest["split"] == REFERENCE).to_numpy()
    return IngestResult(train=data.select(~is_reference), reference=data.select(is_reference))


def balanced_head(items: list[SourceItem], limit: int) -> list[SourceItem]:
    """The first `limit` items taken round-robin across labels, so a small run keeps every class."""
    by_label: dict[str | None, list[SourceItem]] = defaultdict(list)
    for item in items:
        by_label[item.label].append(item)
    queues = [iter(group) for group in by_label.values()]
    chosen: list[SourceItem] = []
    while queues and len(chosen) < limit:
        for queue in list(queues):
            item = next(queue, None)
            if item is None:
                queues.remove(queue)
            elif len(chosen) < limit:
                chosen.append(item)
    order = {id(item): i for i, item in enumerate(items)}
    return sorted(chosen, key=lambda item: order[id(item)])


def _decode_all(items: list[SourceItem], image_size: int, channels: int) -> tuple[list[dict], list]:
    rows, pixels = [], []
    blank = np.zeros((image_size, image_size, channels), dtype=np.uint8)
    for index, item in enumerate(items):
        row = {"id": f"{index:07d}", "source": item.source, "label": item.label}
        try:
            decoded = decode(item, image_size, channels)
        except DecodeError as err:
            log.warning(
                "%s: %s. Kept as a row with this reason; the quality stage drops it "
                "(remove or replace the file to use it)",
                item.source,
                err,
            )
            row |= {"sha256": None, "width": 0, "height": 0, "mode": None, "decode_error": str(err)}
            pixels.append(blank)
        else:
            sha = pixel_sha256(decoded.pixels)
            row |= {
                "sha256": sha,
                "width": decoded.width,
                "height": decoded.height,
                "mode": decoded.mode,
                "decode_error": None,
            }
            pixels.append(decoded.pixels)
        rows.append(row)
        if (index + 1) % PROGRESS_EVERY == 0 or index + 1 == len(items):
            log.info("decoded %d/%d", index + 1, len(items))
    return rows, pixels


def _assign_split(manifest: pd.DataFrame, reference_fraction: float, seed: int) -> pd.Series:
    """Undecodable rows stay in the train pool: the reference must hold only usable images."""

    def unit_interval(sha: str | None) -> float:
        if sha is None or pd.isna(sha):
            return 1.0
        digest = hashlib.sha256(f"{seed}:{sha}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    draws = manifest["sha256"].map(unit_interval)
    return pd.Series(np.where(draws < reference_fraction, REFERENCE, TRAIN), index=manifest.index)


def _validate(image_size: int, channels: int, reference_fraction: float) -> None:
    def bad(problem: str, fix: str) -> StageError:
        return StageError("ingest", "params.yaml", problem, fix)

    if channels not in (1, 3):
        raise bad(f"data.channels={channels}", "use 1 (grey) or 3 (RGB)")
    if image_size < 8 or image_size % 4:
        raise bad(
            f"data.image_size={image_size}", "use a multiple of 4 of at least 8, e.g. 32 or 64"
        )
    if not 0 < reference_fraction < 1:
        raise bad(
            f"data.reference_fraction={reference_fraction}", "use a fraction in (0, 1), e.g. 0.2"
        )
