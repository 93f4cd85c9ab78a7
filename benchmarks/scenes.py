"""Distinct procedural colour scenes, with re-encoded near-copies, as a user's folder of photos.

    python benchmarks/scenes.py OUT_FOLDER [--n 10000] [--size 64] [--copies 0.01] [--seed 0]

Each scene is drawn from its own seed: a two-colour gradient background and 3-8 shapes (ellipses,
rectangles, polygons, thick lines) in random colours, lightly textured, so no two scenes are
variants of one image (shifted or tinted copies of a few thousand digits would be near-duplicates
by design). A `--copies` share of the files are near-copies of another scene as collected data
holds them: re-saved as JPEG at quality 75-95, brightness shifted by up to ±8 levels and contrast
scaled by 0.95-1.05. Files go in one sub-folder per class (the number of shapes, a label the
pipeline can learn), and `OUT_FOLDER-truth.csv` beside it says which file copies which.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

SHAPES = (3, 8)
JPEG_QUALITY = (75, 95)
BRIGHTNESS = 8.0
CONTRAST = (0.95, 1.05)


def scene(seed: int, size: int) -> tuple[np.ndarray, int]:
    """One uint8 size×size×3 scene and its number of shapes (its class)."""
    rng = np.random.default_rng([seed, 0x5CE7E])
    start, end = rng.uniform(0, 255, (2, 3))
    direction = rng.normal(size=2)
    ys, xs = np.mgrid[0:size, 0:size] / (size - 1)
    ramp = (direction[0] * xs + direction[1] * ys)[..., None]
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    image = np.ascontiguousarray((start + (end - start) * ramp).astype(np.uint8))
    shapes = int(rng.integers(SHAPES[0], SHAPES[1] + 1))
    for _ in range(shapes):
        _draw_shape(image, rng, size)
    texture = rng.normal(0, 4, image.shape)
    return np.clip(image + texture, 0, 255).astype(np.uint8), shapes


def _draw_shape(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    centre = tuple(int(c) for c in rng.integers(0, size, 2))
    kind = rng.integers(4)
    if kind == 0:
        axes = tuple(int(a) for a in rng.integers(size // 16 + 1, size // 3, 2))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(image, centre, axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
    elif kind == 1:
        corner = tuple(int(c) for c in rng.integers(0, size, 2))
        cv2.rectangle(image, centre, corner, colour, -1)
    elif kind == 2:
        points = rng.integers(0, size, (int(rng.integers(3, 7)), 2)).astype(np.int32)
        cv2.fillPoly(image, [points], colour, cv2.LINE_AA)
    else:
        end = tuple(int(c) for c in rng.integers(0, size, 2))
        cv2.line(image, centre, end, colour, int(rng.integers(1, size // 10 + 2)), cv2.LINE_AA)


def reencode(image: np.ndarray, rng: np.random.Generator) -> bytes:
    """A near-copy as collected data holds one: brightness and contrast moved, saved as JPEG."""
    pixels = image.astype(np.float32)
    pixels = (
        (pixels - 127.5) * rng.uniform(*CONTRAST) + 127.5 + rng.uniform(-BRIGHTNESS, BRIGHTNESS)
    )
    moved = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    moved.save(
        buffer, format="JPEG", quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    )
    return buffer.getvalue()


def write_scenes(
    folder: Path, n: int, size: int = 64, copies: float = 0.01, seed: int = 0
) -> pd.DataFrame:
    """`n` files under `folder`: scenes as PNG, a `copies` share of them near-copies as JPEG.

    Returns (and writes beside the folder as `<folder>-truth.csv`) `path`, `kind`
    (`near_duplicate` or empty) and
    `original` (the copied file's path) per file.
    """
    rng = np.random.default_rng(seed)
    n_copies = int(round(n * copies))
    n_scenes = n - n_copies
    originals = rng.choice(n_scenes, size=n_copies, replace=False)
    rows = []
    for index in range(n_scenes):
        image, shapes = scene(seed * 10_000_019 + index, size)
        path = folder / f"{shapes}-shapes" / f"scene-{index:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        rows.append((str(path), None, None))
    for k, source in enumerate(originals):
        original = Path(rows[source][0])
        image = np.asarray(Image.open(original).convert("RGB"))
        path = original.parent / f"copy-{k:07d}.jpg"
        path.write_bytes(reencode(image, rng))
        rows.append((str(path), "near_duplicate", str(original)))
    truth = pd.DataFrame(rows, columns=["path", "kind", "original"]).astype("string")
    truth.to_csv(folder.with_name(f"{folder.name}-truth.csv"), index=False)
    return truth


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--copies", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    truth = write_scenes(args.folder, args.n, args.size, args.copies, args.seed)
    print(
        f"wrote {len(truth)} files ({int(truth['kind'].notna().sum())} near-copies)"
        f" to {args.folder}"
    )


if __name__ == "__main__":
    main()
