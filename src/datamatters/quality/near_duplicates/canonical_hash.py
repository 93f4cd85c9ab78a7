"""Perceptual hashes of each image in two views: a canonical pose, and as it is.

The pose (the brightness centroid moved to the centre and, when the image has a clear main axis,
that axis turned upright) makes a slightly moved or turned copy hash alike. It is only as stable
as the centroid and the axis: on colour scenes without a background, a JPEG re-save and a
brightness change can move them, and the copy's pose lands elsewhere (hashes 24-28 bits apart).
The second view, the image as it is, hashes such a copy alike, so each image is searched in both.
The hash: `imagehash`'s phash (or dhash) of each view.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import imagehash
import numpy as np
from PIL import Image

from datamatters.data.mapped import release_rows, scratch_array
from datamatters.parallel import map_chunks

if TYPE_CHECKING:
    from datamatters.quality.features import GreyRows

HASH_BITS = 64
HASHES = {"phash": imagehash.phash, "dhash": imagehash.dhash}
MIN_ECCENTRICITY = 0.1  # below this the main axis is too ill-defined to turn by
MAX_TURN = 20.0  # degrees: the canonical pose never turns an image further
CONFIRM_SIDE = 32  # pixels: images are posed, and later compared, at this size


def canonical_pose(grey: np.ndarray) -> np.ndarray:
    """uint8 H×W: the centroid of |brightness − background| moved to the centre, main axis upright.

    The background is the median brightness (black for MNIST, the paper for scans), and the area
    uncovered by the move is filled with it.
    """
    image = np.ascontiguousarray(grey, dtype=np.uint8)
    height, width = image.shape
    background = float(np.median(image))
    mass = np.abs(image.astype(np.float32) - background)
    moments = cv2.moments(mass)
    if moments["m00"] <= 1e-6:
        return image
    cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    mu20, mu02, mu11 = moments["mu20"], moments["mu02"], moments["mu11"]
    turn = 0.0
    if mu20 + mu02 > 0:
        eccentricity = math.hypot(mu20 - mu02, 2 * mu11) / (mu20 + mu02)
        if eccentricity >= MIN_ECCENTRICITY:
            axis = 0.5 * math.degrees(math.atan2(2 * mu11, mu20 - mu02))
            turn = float(np.clip(axis - 90 if axis > 0 else axis + 90, -MAX_TURN, MAX_TURN))
    matrix = cv2.getRotationMatrix2D((cx, cy), turn, 1.0)
    matrix[0, 2] += (width - 1) / 2 - cx
    matrix[1, 2] += (height - 1) / 2 - cy
    return cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=background,
    )


VIEWS = ("canonical", "as_is")


def image_views(grey: np.ndarray) -> np.ndarray:
    """uint8 N×2×S×S (S = CONFIRM_SIDE): each image of a uint8 N×H×W brightness batch in its
    canonical pose and as it is, both at S×S."""
    out = np.empty((len(grey), len(VIEWS), CONFIRM_SIDE, CONFIRM_SIDE), dtype=np.uint8)
    for i, image in enumerate(grey):
        if image.shape != (CONFIRM_SIDE, CONFIRM_SIDE):
            image = cv2.resize(image, (CONFIRM_SIDE, CONFIRM_SIDE), interpolation=cv2.INTER_AREA)
        out[i] = canonical_pose(image), image
    return out


def perceptual_hashes(images: np.ndarray, method: str = "phash") -> np.ndarray:
    """uint64 64-bit `imagehash` hashes of uint8 N×H×W images (first bit most significant)."""
    if method not in HASHES:
        raise ValueError(f"unknown hash {method!r}; use one of {', '.join(HASHES)}")
    function = HASHES[method]
    bits = np.stack([function(Image.fromarray(image)).hash.reshape(-1) for image in images])
    if bits.shape[1] != HASH_BITS:
        raise ValueError(f"{method} gave {bits.shape[1]}-bit hashes, expected {HASH_BITS}")
    return np.packbits(bits.astype(np.uint8), axis=1).view(">u8").ravel().astype(np.uint64)


def view_hashes(
    grey: np.ndarray | GreyRows, method: str = "phash", scratch: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`image_views` (N×2×S×S) and their hashes (uint64 N×2) of a uint8 N×H×W brightness batch
    (`features.grey`: what `imagehash` reads, and a quarter of the float luminance's bytes to send
    to the workers), in worker processes. A lazy `GreyRows` is read one chunk per task.

    With `scratch` (a directory on disk) the views are written to a nameless file there, not
    kept in memory: at 2 KB an image (1.3 GB for 640,000 images) they were most of what the
    copy checks held, and the searches read them a chunk or a pair at a time.
    """
    shape = (len(grey), len(VIEWS), CONFIRM_SIDE, CONFIRM_SIDE)
    views = np.empty(shape, np.uint8) if scratch is None else scratch_array(shape, scratch)
    codes = np.empty((len(grey), len(VIEWS)), np.uint64)
    start = 0
    for done, (part, hashes) in map_chunks(partial(_views_and_hashes, method=method), grey):
        views[start:done], codes[start:done] = part, hashes
        release_rows(views, start, done)
        start = done
    return views, codes


def _views_and_hashes(grey: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    views = image_views(np.asarray(grey))
    flat = views.reshape(-1, CONFIRM_SIDE, CONFIRM_SIDE)
    return views, perceptual_hashes(flat, method).reshape(len(views), len(VIEWS))


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64: the Hamming distance of two hashes is `popcount(a ^ b)`."""
    return np.bitwise_count(np.asarray(values, dtype=np.uint64))
