"""FID between two folders of images, outside the pipeline, as `python -m pytorch_fid` offers.

Inception features read each file as the reference tools do (PIL, converted to RGB, at its own
size; the extractor resizes to 299). Judge features decode each file exactly as the ingest stage
does, to the judge's size and channels.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datamatters.data.decode import DecodeError, decode
from datamatters.data.sources import IMAGE_EXTENSIONS, ImageFile, SourceItem
from datamatters.features.extract import extract
from datamatters.features.inception import InceptionFeatures
from datamatters.features.judge import JudgeFeatures
from datamatters.models.checkpoint import load_checkpoint
from datamatters.scores.frechet import fid

log = logging.getLogger("datamatters")
FEATURES = ("inception", "judge")


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if len(files) < 2:
        raise ValueError(f"{root}: FID needs at least 2 images, found {len(files)}")
    return files


def folder_fid(
    folder_a: str | os.PathLike[str],
    folder_b: str | os.PathLike[str],
    features: str = "inception",
    batch_size: int = 50,
    judge: str | os.PathLike[str] = "models/judge.pt",
    device: str | None = None,
) -> float:
    """FID of folder B's images against folder A's (symmetric up to floating point)."""
    if features not in FEATURES:
        raise ValueError(f"features={features!r}: use one of {', '.join(FEATURES)}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if features == "inception":
        extractor, load = InceptionFeatures(), _rgb
    else:
        network = load_checkpoint(judge)
        extractor = JudgeFeatures(network)
        load = _decoder(network.channels, network.image_size)
    extractor = extractor.to(device)
    rows = []
    for folder in (folder_a, folder_b):
        files = image_files(folder)
        log.info("%s: %d images", folder, len(files))
        batches = _batches(files, load, batch_size)
        rows.append(np.concatenate([extract(extractor, batch, batch_size) for batch in batches]))
    return fid(*rows)


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _decoder(channels: int, size: int):
    def load(path: Path) -> np.ndarray:
        try:
            return decode(SourceItem(str(path), None, ImageFile(str(path))), size, channels).pixels
        except DecodeError as err:
            raise ValueError(f"{path}: {err}") from err

    return load


def _batches(files: list[Path], load, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive files of one shape, at most `batch_size` at a time."""
    batch: list[np.ndarray] = []
    for path in files:
        image = load(path)
        if batch and (len(batch) == batch_size or image.shape != batch[0].shape):
            yield np.stack(batch)
            batch = []
        batch.append(image)
    if batch:
        yield np.stack(batch)
