"""Per-image measurements the checks threshold, vectorised over batches of uint8 N×H×W×C images.

Every function takes a batch and returns one value (or one feature row) per image, so a check can
feed a memory-mapped dataset through `per_chunk` without holding more than a chunk in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from datamatters.data.mapped import read_chunks, rows_per_chunk

CHUNK_BYTES = 4 * 2**20  # pixels per chunk: 4,096 32×32 grey images, 341 64×64 RGB ones
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as PIL's "L" mode
NOISE_KERNEL_GAIN = 6.0 * 0.6745  # |response| median of unit white noise to the kernel below
MIN_RANGE = 32.0  # grey levels: the smallest dynamic range `spread` divides by


def per_chunk(
    images: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    rows: np.ndarray | None = None,
    chunk: int | None = None,
) -> np.ndarray:
    """`fn` over `images[rows]` (all rows if None) `chunk` rows at a time (by default as many as
    fill `CHUNK_BYTES`), results concatenated."""
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    parts = [fn(pixels) for _, pixels in _read_chunks(images, rows, chunk)]
    return np.concatenate(parts) if parts else np.empty(0)


def _read_chunks(
    images: np.ndarray, rows: np.ndarray, chunk: int | None
) -> Iterator[tuple[slice, np.ndarray]]:
    return read_chunks(images, rows, chunk or chunk_rows(images))


def chunk_rows(images: np.ndarray) -> int:
    """Rows per chunk: a fixed number of pixels, not of images, because the measures' float and
    integer temporaries are some 25 times a chunk's bytes, and a 64×64 RGB image has 12 times the
    bytes of a 32×32 grey one."""
    return rows_per_chunk(images, CHUNK_BYTES)


def luminance(images: np.ndarray) -> np.ndarray:
    """float32 N×H×W brightness on 0-255: the grey channel, or BT.601 luma of RGB."""
    images = np.asarray(images)
    if images.ndim == 3:
        return images.astype(np.float32)
    if images.shape[-1] == 1:
        return images[..., 0].astype(np.float32)
    return images[..., :3].astype(np.float32) @ LUMA


def grey(images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W: `luminance` rounded, what perceptual hashes read."""
    return np.clip(np.rint(luminance(images)), 0, 255).astype(np.uint8)


class GreyRows:
    """`grey` of `images[rows]`, computed when sliced: the hashing pass reads it a chunk at a time,
    so no grey copy of the whole set is ever held (4 KB an image at 64×64)."""

    def __init__(self, images: np.ndarray, rows: np.ndarray) -> None:
        self.images, self.rows = images, np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, where: slice) -> np.ndarray:
        """uint8 R×H×W for the rows at `where`, read `CHUNK_BYTES` of pixels at a time."""
        part = self.rows[where]
        out = np.empty((len(part), *self.images.shape[1:3]), dtype=np.uint8)
        for at, pixels in _read_chunks(self.images, part, None):
            out[at] = grey(pixels)
        return out


def grey_rows(images: np.ndarray, rows: np.ndarray) -> GreyRows:
    """The brightness the perceptual hashes read, a byte a pixel, as a lazy sequence of rows."""
    return GreyRows(images, rows)


def sharpness(grey: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian divided by the image's own variance; NaN for a flat image.

    Dividing by the variance makes it a measure of how much of the image's contrast sits in fine
    detail, so a dark or washed-out image is not mistaken for a blurry one.
    """
    padded = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="reflect")  # cv2's BORDER_REFLECT_101
    laplacian = (
        padded[:, :-2, 1:-1]
        + padded[:, 2:, 1:-1]
        + padded[:, 1:-1, :-2]
        + padded[:, 1:-1, 2:]
        - 4.0 * grey
    )
    flat = grey.reshape(len(grey), -1)
    variance = flat.var(axis=1)
    detail = laplacian.reshape(len(grey), -1).var(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(variance > 1e-6, detail / variance, np.nan)


def noise_level(grey: np.ndarray) -> np.ndarray:
    """Robust estimate of the pixel-noise standard deviation, in grey levels.

    The response to Immerkær's Laplacian-difference kernel [[1,-2,1],[-2,4,-2],[1,-2,1]] is ~zero
    on smooth areas and 6σ-wide on white noise; its median absolute value ignores the strokes and
    edges, a minority of pixels, that a plain residual standard deviation would count as noise.
    """
    g = grey
    response = (
        g[:, :-2, :-2]
        - 2 * g[:, :-2, 1:-1]
        + g[:, :-2, 2:]
        - 2 * g[:, 1:-1, :-2]
        + 4 * g[:, 1:-1, 1:-1]
        - 2 * g[:, 1:-1, 2:]
        + g[:, 2:, :-2]
        - 2 * g[:, 2:, 1:-1]
        + g[:, 2:, 2:]
    )
    return np.median(np.abs(response).reshape(len(g), -1), axis=1) / NOISE_KERNEL_GAIN


def brightness_percentile(grey: np.ndarray, q: float) -> np.ndarray:
    """The q-th percentile of each image's brightness (0-255)."""
    return np.percentile(grey.reshape(len(grey), -1), q, axis=1).astype(np.float64)


def spread(grey: np.ndarray) -> np.ndarray:
    """Standard deviation over the image's own 1-99% brightness range (at least `MIN_RANGE`).

    Near zero for a blank frame, a flat field with a little noise, or a speck on a plain
    background; unchanged when the whole image is darkened or washed out, which are other checks.
    """
    flat = grey.reshape(len(grey), -1)
    low, high = np.percentile(flat, [1, 99], axis=1)
    return flat.std(axis=1) / np.maximum(high - low, MIN_RANGE)


def appearance_features(
    images: np.ndarray, cells: int = 4, orientations: int = 8, bins: int = 16
) -> np.ndarray:
    """A small description of how an image looks, for density checks without judge features.

    Two unit-length blocks: a histogram of gradient orientations over a cells×cells grid
    (HOG-like: what the strokes or edges are) and the brightness histogram of each channel (what
    the tones are), square-rooted so Euclidean distances between them are Hellinger distances.
    The tone block counts `TONE_WEIGHT` times: on MNIST a photo among digits differs most in its
    tones, and raw pixels put a smooth grey photo closer to a digit than two digits are.
    """
    images = np.asarray(images)
    n, height, width, channels = images.shape
    grey = luminance(images)
    dy, dx = np.gradient(grey, axis=(1, 2))
    magnitude = np.hypot(dx, dy)
    angle = np.mod(np.arctan2(dy, dx), np.pi)
    orientation = np.minimum((angle * (orientations / np.pi)).astype(np.int64), orientations - 1)
    cell_y = (np.arange(height) * cells // height)[:, None]
    cell_x = (np.arange(width) * cells // width)[None, :]
    cell = (cell_y * cells + cell_x)[None]
    slot = (np.arange(n)[:, None, None] * cells * cells + cell) * orientations + orientation
    edges = np.bincount(
        slot.ravel(), weights=magnitude.ravel(), minlength=n * cells * cells * orientations
    ).reshape(n, -1)
    edges = _unit(np.sqrt(edges))
    levels = np.minimum(images.reshape(n, -1, channels).astype(np.int64) * bins // 256, bins - 1)
    offsets = (np.arange(n)[:, None, None] * channels + np.arange(channels)) * bins
    tones = np.bincount((levels + offsets).ravel(), minlength=n * channels * bins)
    tones = np.sqrt(tones.reshape(n, -1) / (height * width * channels))
    return np.concatenate([edges, TONE_WEIGHT * tones], axis=1).astype(np.float32)


TONE_WEIGHT = 3.0


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 1e-9)
