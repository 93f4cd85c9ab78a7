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
import pandas as pd
from PIL import Image

from datamatters.errors import InputError

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


@dataclass(frozen=True)
class Unusable:
    """Stands in for a listed item that cannot be opened, so it still gets a row with `reason`."""

    reason: str

    def __call__(self) -> Image.Image:
        raise UnsupportedFile(self.reason)


FOLDER_FIX = "run with -S data=folder -S data.path=data/source (one sub-folder per class)"


class FolderSource:
    """One sub-folder per class under `root`; `unlabeled/` and loose files give unlabeled rows."""

    def __init__(self, root: str | None) -> None:
        self.root = root  # validated when listed: Hydra's instantiate would wrap an error here

    def items(self) -> Iterator[SourceItem]:
        root = validated_folder(self.root, FOLDER_FIX)
        if not any(p.suffix.lower() in IMAGE_EXTENSIONS for p in root.rglob("*") if p.is_file()):
            raise InputError(
                root,
                f"contains no image files ({', '.join(IMAGE_EXTENSIONS)})",
                "put images in one sub-folder per class, e.g. <path>/cat/001.png",
            )
        for parts in sorted(_visible_files(root)):
            label = None if len(parts) == 1 or parts[0] == UNLABELED_DIR else parts[0]
            path = os.path.join(root, *parts)
            yield SourceItem(path, label, ImageFile(path))


class ManifestSource:
    """A CSV or Parquet table of image paths, relative to its folder `root`, and optional labels.

    A listed path that cannot be used (it escapes `root`, is missing, is listed twice, or its
    label is not one of `classes`) still yields an item, whose row carries the reason: a bad line
    costs one row, never the run. Nothing outside `root` is ever opened, so the DVC dependency
    on `root` covers every file an experiment read.
    """

    def __init__(
        self,
        root: str | None,
        manifest: str = "manifest.csv",
        path_column: str = "path",
        label_column: str | None = "label",
        classes: list[str] | None = None,
    ) -> None:
        self.root, self.manifest = root, manifest
        self.path_column, self.label_column = path_column, label_column
        self.classes = None if classes is None else [str(c) for c in classes]

    def items(self) -> Iterator[SourceItem]:
        fix = "run with -S data=manifest -S data.path=<folder> -S data.manifest=<file in it>"
        root = validated_folder(self.root, fix)
        table = self._table(root / self.manifest)
        labels = (
            table[self.label_column]
            if self.label_column in table
            else pd.Series(pd.NA, index=table.index)
        )
        first_line: dict[Path, int] = {}
        rows = zip(table[self.path_column], labels, strict=True)
        for line, (listed, label) in enumerate(rows, start=2):  # line 1 is the header
            label = None if pd.isna(label) else str(label)
            path, reason = self._resolve(root, listed)
            if reason is None and path in first_line:
                reason = f"listed twice in {self.manifest} (first on line {first_line[path]})"
            elif reason is None and label is not None and label not in (self.classes or [label]):
                reason = f"label {label!r} is not one of data.classes {self.classes}"
            if path is not None:
                first_line.setdefault(path, line)
            source = f"{root / self.manifest}:{line}:{listed}"
            opener = Unusable(reason) if reason else ImageFile(str(path))
            yield SourceItem(source, label, opener)

    def _table(self, path: Path) -> pd.DataFrame:
        fix = "point data.manifest at a .csv or .parquet file inside data.path"
        if not path.is_file():
            raise InputError(path, "manifest not found", fix)
        try:
            if path.suffix.lower() == ".parquet":
                table = pd.read_parquet(path)
            elif path.suffix.lower() == ".csv":
                table = pd.read_csv(path, dtype=str, keep_default_na=True)
            else:
                raise InputError(path, f"unknown manifest type {path.suffix!r}", fix)
        except (ValueError, OSError) as err:
            raise InputError(path, f"unreadable ({err})", fix) from err
        if self.path_column not in table:
            raise InputError(
                path,
                f"no column {self.path_column!r} (columns: {', '.join(map(str, table.columns))})",
                "name the column of image paths with data.source.path_column",
            )
        if table.empty:
            raise InputError(path, "lists no images", "add one row per image")
        return table

    @staticmethod
    def _resolve(root: Path, listed: object) -> tuple[Path | None, str | None]:
        """The file a manifest line names, or why it cannot be read."""
        if pd.isna(listed) or not str(listed).strip():
            return None, "empty path"
        path = (root / str(listed)).resolve()
        if not path.is_relative_to(root.resolve()):
            return None, f"path escapes the manifest's folder {root}"
        if not path.is_file():
            return path, "file not found"
        return path, None


def validated_folder(root: str | None, fix: str) -> Path:
    """`root` as an existing folder, or the ingest error that says how to point at one."""
    if not root:
        raise InputError("params.yaml", "data.path is not set", fix)
    path = Path(root).expanduser()
    if not path.exists():
        raise InputError(path, "folder does not exist", fix)
    if not path.is_dir():
        raise InputError(path, "is a file, not a folder", fix)
    return path


def _visible_files(root: Path) -> Iterator[tuple[str, ...]]:
    """Each file's path parts relative to `root`, skipping hidden files and folders."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        relative = Path(folder).relative_to(root).parts
        for name in files:
            if not name.startswith("."):
                yield (*relative, name)
