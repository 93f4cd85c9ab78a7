"""A picture of what each check flagged, so a threshold can be judged by eye, not only by count."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from datamatters.atomic import atomic_path

LABEL_WIDTH = 120
PAD = 2


def save_gallery(
    images: np.ndarray,
    manifest: pd.DataFrame,
    checks: list[str],
    path: str | os.PathLike[str],
    per_check: int = 8,
    scale: int = 2,
) -> None:
    """One row per check: its name, then up to `per_check` flagged images (first in manifest order).

    Undecodable rows have no pixels to show, so that row shows how many there were instead.
    With every check off (filters=none) the gallery is one row that says so: DVC still needs the
    declared output, and an empty PNG cannot be written.
    """
    side = images.shape[1] * scale
    row_height = side + 2 * PAD
    width = LABEL_WIDTH + per_check * (side + PAD) + PAD
    canvas = Image.new("RGB", (width, row_height * max(len(checks), 1)))
    draw = ImageDraw.Draw(canvas)
    if not checks:
        draw.text((4, PAD), "no quality check enabled", fill=(255, 255, 255))
    for row, check in enumerate(checks):
        flagged = np.flatnonzero(manifest["issues"].map(lambda issues, c=check: c in issues))
        top = row * row_height
        draw.text((4, top + PAD), f"{check}\n{len(flagged)} flagged", fill=(255, 255, 255))
        if check == "undecodable":
            continue
        for column, index in enumerate(flagged[:per_check]):
            tile = Image.fromarray(_rgb(images[index])).resize((side, side), Image.NEAREST)
            canvas.paste(tile, (LABEL_WIDTH + column * (side + PAD), top + PAD))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


def _rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
