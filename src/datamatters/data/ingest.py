"""Ingest: decode every image of a source, split it into a train pool and a held-out reference.

The split is decided by a seeded hash of each image's pixels, so identical images always land on
the same side (no leakage across splits) and adding images never reshuffles existing ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from datamatters.data.contract import StageData, pixel_sha256
from datamatters.data.decode import Decoded, DecodeError, decode
from datamatters.data.mapped import gather, release_rows, rows_per_chunk, scratch_array
from datamatters.data.sources import SourceItem
from datamatters.errors import InputError
from datamatters.parallel import map_chunks

log = logging.getLogger("datamatters")

TRAIN, REFERENCE = "train", "reference"
PROGRESS_EVERY = 1000
RELEASE_BYTES = 16 * 2**20  # pixels moved at a time between releases of the scratch's pages


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
            "undecodable": int(
                train["decode_error"].notna().sum() + ref["decode_error"].notna().sum()
            ),
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
    scratch: str | os.PathLike[str] | None = None,
) -> IngestResult:
    """Decode, split and order `items`. With `scratch` (a folder on disk) the decoded pixels live
    in a nameless file there rather than in memory, so a million images fit in bounded memory;
    the split views then read that file."""
    _validate(image_size, channels, reference_fraction)
    items = balanced_head(items, limit) if limit else items
    if not items:
        raise InputError(
            "params.yaml", "the source yielded no items", "check data.path / data.limit"
        )
    rows, pixels = _decode_all(items, image_size, channels, scratch)
    manifest = pd.DataFrame(rows)
    manifest["label"] = manifest["label"].astype("string")
    manifest["decode_error"] = manifest["decode_error"].astype("string")
    _check_usable(manifest)
    manifest["split"] = _assign_split(manifest, reference_fraction, seed)
    is_reference = (manifest["split"] == REFERENCE).to_numpy()
    order = np.concatenate([np.flatnonzero(~is_reference), np.flatnonzero(is_reference)])
    _partition_rows(pixels, is_reference, scratch)
    manifest = manifest.iloc[order].reset_index(drop=True)
    cut = int((~is_reference).sum())
    return IngestResult(
        train=StageData(pixels[:cut], manifest.iloc[:cut].reset_index(drop=True)),
        reference=StageData(pixels[cut:], manifest.iloc[cut:].reset_index(drop=True)),
    )


def _partition_rows(
    rows: np.ndarray, is_reference: np.ndarray, scratch: str | os.PathLike[str] | None
) -> None:
    """Reorder `rows` in place to the train rows, then the reference rows, each side in its
    original order: so the two splits are two views of the decoded pixels, not two more copies.

    One forward pass, a chunk at a time: a train row only ever moves to a lower row, and the
    reference rows wait in a scratch array of their own until the train rows are in place. The
    reads are in order, so a memory-mapped array's pages are released as it goes; random moves
    would fault in neighbouring pages with every row and keep the whole file resident.
    """
    shape = (int(is_reference.sum()), *rows.shape[1:])
    held = np.empty(shape, np.uint8) if scratch is None else scratch_array(shape, scratch)
    chunk = rows_per_chunk(rows, RELEASE_BYTES)
    placed = waiting = 0
    for start in range(0, len(rows), chunk):
        block, side = np.array(rows[start : start + chunk]), is_reference[start : start + chunk]
        to_hold = int(side.sum())
        to_place = len(block) - to_hold
        rows[placed : placed + to_place] = block[~side]
        held[waiting : waiting + to_hold] = block[side]
        release_rows(rows, placed, start + len(block))
        release_rows(held, waiting, waiting + to_hold)
        placed, waiting = placed + to_place, waiting + to_hold
    for start in range(0, len(held), chunk):
        part = held[start : start + chunk]
        rows[placed + start : placed + start + len(part)] = part
        release_rows(rows, placed + start, placed + start + len(part))
        release_rows(held, start, start + len(part))


def real_sample(train: StageData, count: int, seed: int) -> StageData:
    """Up to `count` decodable train-pool images, chosen by `seed`, in the seeded draw's order.

    Not in id order: a source listed class by class would then put a few classes first, and
    metrics that read only the first N images (Inception's) would see those classes alone.

    Taken before any corruption is injected, so its content depends on the source and the split
    alone: the real-data floor measured on it (`real_floor`) stays put whatever an experiment does
    to the train pool, and DVC does not re-run that stage for a data knob.
    """
    decodable = np.flatnonzero(train.manifest["decode_error"].isna().to_numpy())
    count = min(count, len(decodable))
    chosen = np.random.default_rng(seed).choice(decodable, count, replace=False)
    pixels = gather(train.images, chosen)
    return StageData(pixels, train.manifest.iloc[chosen].reset_index(drop=True))


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


def _decode_all(
    items: list[SourceItem],
    image_size: int,
    channels: int,
    scratch: str | os.PathLike[str] | None,
) -> tuple[list[dict], np.ndarray]:
    """Manifest rows and pixels for every item; an undecodable one gets a reason and a blank.

    Each chunk's pixels are copied into one array as it arrives (on disk with `scratch`, its pages
    released once written), so the decoded images are held once at most, not as a list and then a
    stacked copy of it.
    """
    rows = []
    shape = (len(items), image_size, image_size, channels)
    pixels = np.zeros(shape, dtype=np.uint8) if scratch is None else scratch_array(shape, scratch)
    decode_chunk = partial(_decode_chunk, image_size=image_size, channels=channels)
    for done, results in map_chunks(decode_chunk, items):
        first = len(rows)
        for item, result in zip(items[first:done], results, strict=True):
            if not isinstance(result, str):
                pixels[len(rows)] = result.pixels
            rows.append(_manifest_row(len(rows), item, result))
        release_rows(pixels, first, done)
        if done // PROGRESS_EVERY > (done - len(results)) // PROGRESS_EVERY or done == len(items):
            log.info("decoded %d/%d", done, len(items))
    return rows, pixels


def _manifest_row(index: int, item: SourceItem, result: Decoded | str) -> dict:
    row = {"id": f"{index:07d}", "source": item.source, "label": item.label}
    if isinstance(result, str):
        log.warning(
            "%s: %s. Kept as a row with this reason; the quality checks drop it "
            "(remove or replace the file to use it)",
            item.source,
            result,
        )
        return row | {"sha256": None, "width": 0, "height": 0, "mode": None, "decode_error": result}
    return row | {
        "sha256": pixel_sha256(result.pixels),
        "width": result.width,
        "height": result.height,
        "mode": result.mode,
        "decode_error": None,
    }


def _decode_chunk(items: list[SourceItem], image_size: int, channels: int) -> list[Decoded | str]:
    """Each item decoded, or the reason it cannot be (a string), in order."""
    out: list[Decoded | str] = []
    for item in items:
        try:
            out.append(decode(item, image_size, channels))
        except DecodeError as err:
            out.append(str(err))
    return out


def _assign_split(manifest: pd.DataFrame, reference_fraction: float, seed: int) -> pd.Series:
    """A seeded hash of each image's pixels decides its side; identical pixels share a side.

    A row without pixels (undecodable, or unusable for a reason its source gave) is placed by a
    hash of its source instead, so a bad file can land on either side, as it would in a user's
    own folder; the reference split's checks remove it there with its reason.
    """
    keys = manifest["sha256"].where(manifest["sha256"].notna(), "source:" + manifest["source"])

    def unit_interval(key: str) -> float:
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    draws = keys.map(unit_interval)
    return pd.Series(np.where(draws < reference_fraction, REFERENCE, TRAIN), index=manifest.index)


def _check_usable(manifest: pd.DataFrame) -> None:
    """Stop before writing anything when not a single item gave an image."""
    if manifest["decode_error"].notna().all():
        reasons = manifest["decode_error"].value_counts().head(3)
        shown = "; ".join(f"{count} x {reason}" for reason, count in reasons.items())
        raise InputError(
            manifest["source"].iloc[0],
            f"none of the {len(manifest)} items is a usable image ({shown})",
            "fix the files or the manifest's paths as the reasons say, then `dvc repro`",
        )


def _validate(image_size: int, channels: int, reference_fraction: float) -> None:
    def bad(problem: str, fix: str) -> InputError:
        return InputError("params.yaml", problem, fix)

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
