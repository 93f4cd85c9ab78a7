"""Near-duplicates: perceptual hashes, a sub-quadratic Hamming search, then a pixel-level check.

1. Each image is put in a canonical pose (its brightness centroid moved to the centre and, when it
   has a clear main axis, that axis turned upright), then hashed with `imagehash` (phash by
   default). A copy moved by a pixel or two, or turned a few degrees, gets (nearly) the same hash.
2. `hamming_pairs` finds every pair of hashes within `max_distance` bits by multi-index hashing:
   the 64 bits are cut into m chunks; two hashes within r bits agree to within ⌊r/m⌋ bits on at
   least one chunk (pigeonhole), so each chunk is bucketed exactly and only the buckets within
   ⌊r/m⌋ flips of a hash are visited. Candidates are verified with a popcount. m is chosen for the
   number of hashes so buckets stay small: on random hashes time grows as about n^1.5, and 100,000
   hashes take seconds at r = 10 (`benchmarks/near_duplicate_scaling.py`).
3. On small images the hash alone cannot separate a copy from another sample of the same class
   (in phash two different MNIST "1"s are often closer than a "1" and its copy turned 5°), so each
   candidate pair is confirmed: a cheap blurred correlation discards the clearly different, then
   the pair is registered (rigid Lucas-Kanade, batched) and the correlation of the two images'
   gradients decides. A copy aligns to ~1; a different digit keeps different stroke edges.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import partial

import cv2
import imagehash
import numpy as np
from PIL import Image
from scipy import ndimage

from datamatters.parallel import map_chunks
from datamatters.quality.features import luminance

HASHES = {"phash": imagehash.phash, "dhash": imagehash.dhash}
HASH_BITS = 64
TABLE_BITS = 22  # chunks up to this width are looked up in a dense table, wider ones by bisection
PAIR_BUDGET = 1 << 22  # candidate pairs expanded at once while searching
MIN_ECCENTRICITY = 0.1  # below this the main axis is too ill-defined to turn by
MAX_TURN = 20.0  # degrees: the canonical pose never turns an image further
CONFIRM_SIDE = 32  # pixels: images are compared at this size
PREFILTER = 0.92  # blurred correlation below which a candidate is not worth registering
PREFILTER_SIGMA = 1.0
MARGIN = 3  # pixels left out at each border when correlating (warping moves content there)
REGISTER_STEPS = 4
PAIR_CHUNK = 4096


# --- the Hamming search -------------------------------------------------------------------------

_BYTE_BITS = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (`np.bitwise_count` where NumPy has it, >= 2.0)."""
    values = np.asarray(values, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    as_bytes = values.reshape(-1, 1).view(np.uint8)
    return _BYTE_BITS[as_bytes].sum(axis=1, dtype=np.uint8).reshape(values.shape)


def near_duplicate_pairs(hashes, max_distance: int) -> list[tuple[int, int]]:
    """Every (i, j), i < j, whose 64-bit hashes differ in at most `max_distance` bits, sorted."""
    return [(int(i), int(j)) for i, j in hamming_pairs(hashes, max_distance)]


def hamming_pairs(hashes, max_distance: int) -> np.ndarray:
    """`near_duplicate_pairs` as an int64 array of shape (k, 2), rows sorted."""
    codes = as_uint64(hashes)
    n, radius = len(codes), int(max_distance)
    if radius < 0:
        raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    if n < 2:
        return np.empty((0, 2), dtype=np.int64)
    found: list[np.ndarray] = []
    chunks, sub_radius = _plan(n, min(radius, HASH_BITS))
    for low, bits in chunks:
        found.extend(_search_chunk(codes, low, bits, sub_radius, radius))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    keys = np.unique(np.concatenate(found))
    return np.stack([keys // n, keys % n], axis=1)


def as_uint64(hashes) -> np.ndarray:
    if isinstance(hashes, np.ndarray) and hashes.dtype == np.uint64:
        return hashes.ravel()
    if isinstance(hashes, np.ndarray) and hashes.dtype.kind == "i":
        return hashes.ravel().astype(np.uint64)
    return np.array([int(h) & (2**64 - 1) for h in hashes], dtype=np.uint64)


def _plan(n: int, radius: int) -> tuple[list[tuple[int, int]], int]:
    """Chunks (lowest bit, width) and the per-chunk radius with the least expected work.

    Work per chunk ≈ (flip patterns to visit) × (n queries + n²/2^bits candidates).
    """
    best: tuple[float, int] | None = None
    for m in range(1, min(radius + 1, HASH_BITS) + 1):
        narrow, sub = HASH_BITS // m, radius // m
        wide = narrow + (1 if HASH_BITS % m else 0)
        patterns = sum(math.comb(wide, k) for k in range(sub + 1))
        cost = m * patterns * (n + n * n / 2.0**narrow)
        if best is None or cost < best[0]:
            best = (cost, m)
    m = best[1] if best else 1
    widths = [HASH_BITS // m + (1 if k < HASH_BITS % m else 0) for k in range(m)]
    lows = np.concatenate([[0], np.cumsum(widths)[:-1]]).tolist()
    return list(zip(lows, widths, strict=True)), radius // m


def _flips(bits: int, radius: int) -> list[int]:
    return [
        sum(1 << b for b in combo)
        for k in range(radius + 1)
        for combo in itertools.combinations(range(bits), k)
    ]


def _search_chunk(
    codes: np.ndarray, low: int, bits: int, sub_radius: int, radius: int
) -> list[np.ndarray]:
    n = len(codes)
    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2**64 - 1)
    keys = (codes >> np.uint64(low)) & mask
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    table = None
    if bits <= TABLE_BITS:
        counts = np.bincount(keys.astype(np.int64), minlength=1 << bits)
        table = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for flip in _flips(bits, sub_radius):
        probe = keys ^ np.uint64(flip)
        if table is not None:
            index = probe.astype(np.int64)
            start, stop = table[index], table[index + 1]
        else:
            start = np.searchsorted(sorted_keys, probe, side="left")
            stop = np.searchsorted(sorted_keys, probe, side="right")
        sizes = stop - start
        if not sizes.any():
            continue
        out.extend(_expand_and_verify(codes, order, start, sizes, radius, n))
    return out


def _expand_and_verify(
    codes: np.ndarray,
    order: np.ndarray,
    start: np.ndarray,
    sizes: np.ndarray,
    radius: int,
    n: int,
) -> list[np.ndarray]:
    """Candidate pairs (query, bucket member) in slices of at most PAIR_BUDGET, verified."""
    out = []
    ends = np.cumsum(sizes)
    first = 0
    while first < n:
        base = ends[first - 1] if first else 0
        last = int(np.searchsorted(ends, base + PAIR_BUDGET, side="right"))
        last = max(last, first + 1)
        part = sizes[first:last]
        total = int(part.sum())
        if total:
            queries = np.repeat(np.arange(first, last, dtype=np.int64), part)
            offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(part) - part, part)
            members = order[np.repeat(start[first:last], part) + offsets]
            keep = queries < members
            queries, members = queries[keep], members[keep]
            close = popcount(codes[queries] ^ codes[members]) <= radius
            out.append(queries[close] * n + members[close])
        first = last
    return out


# --- hashing in a canonical pose ----------------------------------------------------------------


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


def canonical_images(images: np.ndarray) -> np.ndarray:
    """uint8 N×S×S (S = CONFIRM_SIDE) canonical poses of a uint8 N×H×W×C batch."""
    grey = np.clip(np.rint(luminance(images)), 0, 255).astype(np.uint8)
    out = np.empty((len(grey), CONFIRM_SIDE, CONFIRM_SIDE), dtype=np.uint8)
    for i, image in enumerate(grey):
        if image.shape != (CONFIRM_SIDE, CONFIRM_SIDE):
            image = cv2.resize(image, (CONFIRM_SIDE, CONFIRM_SIDE), interpolation=cv2.INTER_AREA)
        out[i] = canonical_pose(image)
    return out


def perceptual_hashes(canonical: np.ndarray, method: str = "phash") -> np.ndarray:
    """uint64 64-bit `imagehash` hashes of uint8 N×H×W images (first bit most significant)."""
    if method not in HASHES:
        raise ValueError(f"unknown hash {method!r}; use one of {', '.join(HASHES)}")
    function = HASHES[method]
    bits = np.stack([function(Image.fromarray(image)).hash.reshape(-1) for image in canonical])
    if bits.shape[1] != HASH_BITS:
        raise ValueError(f"{method} gave {bits.shape[1]}-bit hashes, expected {HASH_BITS}")
    return np.packbits(bits.astype(np.uint8), axis=1).view(">u8").ravel().astype(np.uint64)


def _canonical_hashes(images: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    canonical = canonical_images(np.asarray(images))
    return canonical, perceptual_hashes(canonical, method)


# --- confirmation -------------------------------------------------------------------------------


def pair_similarity(canonical: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """For each pair of canonical images: the gradient correlation after rigid registration.

    Pairs whose blurred correlation is under PREFILTER are not registered and get NaN.
    """
    out = np.full(len(pairs), np.nan)
    if not len(pairs):
        return out
    used = np.unique(pairs)
    slot = np.zeros(len(canonical), dtype=np.int64)
    slot[used] = np.arange(len(used))
    raw = canonical[used].astype(np.float32)
    blurred = ndimage.gaussian_filter(raw, (0, PREFILTER_SIGMA, PREFILTER_SIGMA))
    inner = _standardised(_inner(blurred))
    for s in range(0, len(pairs), PAIR_CHUNK):
        first, second = slot[pairs[s : s + PAIR_CHUNK, 0]], slot[pairs[s : s + PAIR_CHUNK, 1]]
        coarse = np.einsum("ij,ij->i", inner[first], inner[second])
        close = np.flatnonzero(coarse >= PREFILTER)
        if not len(close):
            continue
        a, b = first[close], second[close]
        motion = _register(blurred[a], blurred[b])
        aligned = _Warper(raw[b])(motion)
        out[s + close] = np.einsum(
            "ij,ij->i", _standardised(_gradients(raw[a])), _standardised(_gradients(aligned))
        )
    return out


def _inner(images: np.ndarray) -> np.ndarray:
    return images[:, MARGIN:-MARGIN, MARGIN:-MARGIN]


def _gradients(images: np.ndarray) -> np.ndarray:
    dy, dx = np.gradient(images, axis=(1, 2))
    return np.concatenate([_inner(dx), _inner(dy)], axis=1)


def _standardised(images: np.ndarray) -> np.ndarray:
    """Rows of zero mean and unit norm (all zero for a constant row), so a dot is a correlation."""
    rows = images.reshape(len(images), -1).astype(np.float32)
    rows = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 1e-6)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs - (width - 1) / 2, ys - (height - 1) / 2


def _register(template: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Rigid motions (angle, dx, dy) that map each `moving` image onto its template.

    Inverse-compositional Lucas-Kanade, batched: the template's gradients and Hessian are computed
    once, and each step warps every moving image with one `cv2.remap` call per tile of images.
    """
    n, height, width = template.shape
    x, y = _grid(height, width)
    dy, dx = np.gradient(template, axis=(1, 2))
    steepest = np.stack([dx * -y + dy * x, dx, dy], axis=1).reshape(n, 3, -1)
    hessian = steepest @ steepest.transpose(0, 2, 1) + 1e-3 * np.eye(3, dtype=np.float32)
    inverse = np.linalg.inv(hessian).astype(np.float32)
    motion = np.zeros((n, 3), dtype=np.float32)
    warp = _Warper(moving)
    for _ in range(REGISTER_STEPS):
        error = (warp(motion) - template).reshape(n, -1, 1)
        step = (inverse @ (steepest @ error))[..., 0]
        angle = motion[:, 0] - step[:, 0]
        cos, sin = np.cos(angle), np.sin(angle)
        motion[:, 1] -= cos * step[:, 1] - sin * step[:, 2]
        motion[:, 2] -= sin * step[:, 1] + cos * step[:, 2]
        motion[:, 0] = angle
        np.clip(motion[:, 0], -0.35, 0.35, out=motion[:, 0])
        np.clip(motion[:, 1:], -4.0, 4.0, out=motion[:, 1:])
    return motion


class _Warper:
    """Bilinear samples of each image at its rotated and shifted grid; zero outside the image.

    The images are stacked as tall tiles, each image in a zero frame, so one `cv2.remap` call warps
    a whole tile (remap's fixed-point maps limit a tile to 32767 rows).
    """

    def __init__(self, images: np.ndarray) -> None:
        n, self.height, self.width = images.shape
        self.tall, self.wide = self.height + 2, self.width + 2
        self.per_tile = max(1, 32000 // self.tall)
        self.tiles = []
        for s in range(0, n, self.per_tile):
            k = min(self.per_tile, n - s)
            framed = np.zeros((k, self.tall, self.wide), dtype=np.float32)
            framed[:, 1:-1, 1:-1] = images[s : s + k]
            self.tiles.append(framed.reshape(k * self.tall, self.wide))
        self.x, self.y = _grid(self.height, self.width)
        self.offsets = (np.arange(self.per_tile, dtype=np.float32) * self.tall)[:, None, None]

    def __call__(self, motion: np.ndarray) -> np.ndarray:
        h, w = self.height, self.width
        cos = np.cos(motion[:, 0])[:, None, None]
        sin = np.sin(motion[:, 0])[:, None, None]
        map_x = cos * self.x - sin * self.y + ((w - 1) / 2 + 1 + motion[:, 1])[:, None, None]
        map_y = sin * self.x + cos * self.y + ((h - 1) / 2 + 1 + motion[:, 2])[:, None, None]
        np.clip(map_x, 0, self.wide - 1, out=map_x)
        np.clip(map_y, 0, self.tall - 1, out=map_y)
        out = np.empty((len(motion), h, w), dtype=np.float32)
        for t, tile in enumerate(self.tiles):
            s = t * self.per_tile
            k = len(tile) // self.tall
            tile_y = map_y[s : s + k] + self.offsets[:k]
            out[s : s + k] = cv2.remap(
                tile, map_x[s : s + k].reshape(k * h, w), tile_y.reshape(k * h, w), cv2.INTER_LINEAR
            ).reshape(k, h, w)
        return out


# --- groups -------------------------------------------------------------------------------------


@dataclass
class NearDuplicateMatches:
    """Within one batch of images: confirmed pairs and each image's best candidate similarity."""

    pairs: np.ndarray  # int64 (k, 2), i < j, confirmed near-duplicates
    best_similarity: np.ndarray | None  # float (n,), NaN where no candidate was registered
    candidates: int  # pairs within max_distance before confirmation


def find_near_duplicates(
    images: np.ndarray,
    max_distance: int,
    min_similarity: float | None,
    method: str = "phash",
    across: int | None = None,
) -> NearDuplicateMatches:
    """Hash, search and (unless `min_similarity` is None) confirm, over a uint8 N×H×W×C batch.

    With `across`, the batch is two sets (rows before `across`, and the rest) and only pairs with
    one image in each are kept, before any is confirmed: a search between two splits.
    """
    if not len(images):
        return NearDuplicateMatches(np.empty((0, 2), np.int64), np.empty(0), 0)
    parts = [part for _, part in map_chunks(partial(_canonical_hashes, method=method), images)]
    canonical = np.concatenate([c for c, _ in parts])
    codes = np.concatenate([h for _, h in parts])
    candidates = hamming_pairs(codes, max_distance)
    if across is not None:
        candidates = candidates[(candidates[:, 0] < across) & (candidates[:, 1] >= across)]
    if min_similarity is None:
        return NearDuplicateMatches(candidates, None, len(candidates))
    similarity = pair_similarity(canonical, candidates)
    best = np.full(len(images), np.nan)
    scored = np.isfinite(similarity)
    for column in (0, 1):
        np.fmax.at(best, candidates[scored, column], similarity[scored])
    confirmed = candidates[scored & (similarity >= min_similarity)]
    return NearDuplicateMatches(confirmed, best, len(candidates))


def group_roots(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over `pairs`: each row's group root, the smallest row index in its group."""
    parent = np.arange(n)

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:  # path compression
            parent[a], a = root, parent[a]
        return root

    for i, j in pairs:
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(a) for a in range(n)], dtype=np.int64)
