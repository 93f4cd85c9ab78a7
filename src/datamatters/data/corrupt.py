"""Inject known corruption into the train pool and record it as ground truth.

The quality and labeling stages are scored by how much of this they find, and the generator by
how much it suffers from what they miss, so every corrupted row says what was done to it
(`injected`) and what its label was before (`clean_label`).

Each kind draws from its own seeded stream and ranks rows by its own random keys, so changing one
kind's fraction moves another kind's rows only where the two compete for the same row.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from numbers import Real

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from datamatters.data.contract import WRITE_CHUNK_BYTES, StageData, pixel_sha256
from datamatters.data.decode import DecodeError, decode
from datamatters.data.mapped import release_rows, rows_per_chunk, scratch_array
from datamatters.data.sources import EncodedImage, SourceItem

log = logging.getLogger("datamatters")

KINDS: tuple[str, ...] = (
    "exact_duplicate",
    "near_duplicate",
    "blur",
    "noise",
    "dark",
    "light",
    "low_information",
    "off_domain",
    "odd_size",
    "undecodable",
    "label_flip",
    "unlabeled",
)
LABEL_KINDS = ("label_flip", "unlabeled")  # they change only the label, of labeled rows
# `mixed` is one knob for sweeps: its fraction is shared evenly by every kind that corrupts what
# a model learns from. Removing labels is left out: it is a labeling task, not corruption.
MIXED = "mixed"
MIXED_KINDS = tuple(kind for kind in KINDS if kind != "unlabeled")
# Natural photographs and textures shipped as files inside scikit-image's wheel (no download).
OFF_DOMAIN_IMAGES = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "brick",
    "grass",
    "gravel",
    "rocket",
    "coins",
    "moon",
    "clock",
)


@dataclass
class Rows:
    """The rows one kind corrupts: copies of their pixels and manifest, edited by that kind."""

    images: np.ndarray
    manifest: pd.DataFrame
    classes: list[str]


Corruption = Callable[[Rows, np.random.Generator], None]


def inject(
    pool: StageData,
    fractions: Mapping[str, float],
    seed: int,
    scratch: str | os.PathLike[str] | None = None,
) -> tuple[StageData, dict[str, int]]:
    """Corrupt a copy of `pool`; returns it with `injected`/`clean_label` and the count per kind.

    With `scratch` (a folder on disk) the copy is a nameless file there, as ingest's decoded
    pixels are, so corrupting a large pool does not hold it in memory."""
    manifest = pool.manifest.reset_index(drop=True).copy()
    clean = manifest["decode_error"].isna().to_numpy()
    labeled = clean & manifest["label"].notna().to_numpy()
    classes = sorted(manifest.loc[clean, "label"].dropna().unique())
    counts = _counts(fractions, int(clean.sum()))
    _check_room(counts, int(clean.sum()), int(labeled.sum()), len(classes))
    rngs = dict(zip(KINDS, np.random.default_rng(seed).spawn(len(KINDS)), strict=True))

    # a run with nothing to inject passes the pixels through: no copy of the whole pool
    pooled = len(pool.images)
    images = pool.images
    if any(counts.values()):
        images = _editable_copy(pool.images, pooled + sum(counts[k] for k in ADDED), scratch)
    manifest["injected"] = pd.Series(pd.NA, index=manifest.index, dtype="string")
    manifest["clean_label"] = manifest["label"].astype("string")
    free = clean.copy()
    # label kinds first: they are restricted to labeled rows.
    for kind in sorted(IN_PLACE, key=lambda k: k not in LABEL_KINDS):
        eligible = free & labeled if kind in LABEL_KINDS else free
        chosen = _pick(rngs[kind], eligible, counts[kind])
        free[chosen] = False
        rows = Rows(images[chosen], manifest.iloc[chosen].copy(), classes)
        IN_PLACE[kind](rows, rngs[kind])
        rows.manifest["injected"] = kind
        _rehash(rows)
        images[chosen] = rows.images
        release_rows(images, 0, len(images))
        manifest.loc[rows.manifest.index] = rows.manifest

    added, end = [], pooled
    for kind in ADDED:
        if counts[kind]:
            rows = _add(kind, counts[kind], rngs[kind], images[:pooled], manifest, free, classes)
            images[end : end + len(rows.images)] = rows.images
            release_rows(images, 0, len(images))
            added.append(rows)
            end += len(rows.images)
    if added:
        manifest = pd.concat([manifest, *(rows.manifest for rows in added)], ignore_index=True)
    out = StageData(images, manifest)
    summary = ", ".join(f"{kind}={n}" for kind, n in counts.items() if n) or "nothing"
    log.info(
        "injected corruption into %d clean train rows (seed %d): %s", clean.sum(), seed, summary
    )
    return out, counts


def _editable_copy(
    pixels: np.ndarray, rows: int, scratch: str | os.PathLike[str] | None
) -> np.ndarray:
    """`pixels` copied into the first rows of a new array of `rows` rows (the rest for added
    rows), in memory or, with `scratch`, on disk a chunk at a time."""
    shape = (rows, *pixels.shape[1:])
    out = np.zeros(shape, np.uint8) if scratch is None else scratch_array(shape, scratch)
    chunk = rows_per_chunk(pixels, WRITE_CHUNK_BYTES)
    for start in range(0, len(pixels), chunk):
        stop = min(start + chunk, len(pixels))
        out[start:stop] = pixels[start:stop]
        release_rows(pixels, start, stop)
        release_rows(out, start, stop)
    return out


def _add(
    kind: str,
    count: int,
    rng: np.random.Generator,
    images: np.ndarray,
    manifest: pd.DataFrame,
    free: np.ndarray,
    classes: list[str],
) -> Rows:
    """New rows of `kind`, built from copies of untouched clean rows (off_domain: from blanks)."""
    if kind == "off_domain":
        template = manifest.iloc[:0].reindex(range(count))
        rows = Rows(np.zeros((count, *images.shape[1:]), np.uint8), template, classes)
    else:
        if not free.any():
            raise ValueError(f"ingest.corrupt.{kind}: no untouched clean row is left to copy")
        origin = _pick(rng, free, count)
        rows = Rows(images[origin], manifest.iloc[origin].copy(), classes)
        rows.manifest["source"] = [f"injected:{kind}:of={i}" for i in rows.manifest["id"]]
    ADDED[kind](rows, rng)
    height, width = images.shape[1:3]
    rows.manifest = rows.manifest.assign(
        id=[f"inj-{kind}-{k:05d}" for k in range(count)],
        split="train",
        width=width,
        height=height,
        decode_error=pd.Series(pd.NA, index=rows.manifest.index, dtype="string"),
        injected=kind,
        clean_label=rows.manifest["label"],
    )
    _rehash(rows)
    return rows


def _counts(fractions: Mapping[str, float], clean: int) -> dict[str, int]:
    for kind, fraction in fractions.items():
        if kind not in (*KINDS, MIXED):
            known = ", ".join((*KINDS, MIXED))
            raise ValueError(f"ingest.corrupt.{kind}: unknown kind; use one of {known}")
        if not isinstance(fraction, Real) or isinstance(fraction, bool) or not 0 <= fraction <= 1:
            raise ValueError(f"ingest.corrupt.{kind}={fraction!r}: use a fraction in [0, 1]")
    share = float(fractions.get(MIXED) or 0) / len(MIXED_KINDS)
    return {
        kind: round((float(fractions.get(kind) or 0) + share * (kind in MIXED_KINDS)) * clean)
        for kind in KINDS
    }


def _check_room(counts: dict[str, int], clean: int, labeled: int, classes: int) -> None:
    """In-place kinds need disjoint rows; a flip needs a labeled row and another class to go to."""
    used = {kind: counts[kind] for kind in IN_PLACE if counts[kind]}
    if sum(used.values()) > clean:
        keys = " + ".join(f"ingest.corrupt.{kind}" for kind in used)
        raise ValueError(
            f"{keys}: {sum(used.values())} rows changed in place, but the clean pool has {clean}"
        )
    if counts["label_flip"] + counts["unlabeled"] > labeled or (
        counts["label_flip"] and classes < 2
    ):
        raise ValueError(
            f"ingest.corrupt.label_flip + unlabeled: {counts['label_flip']} flips and "
            f"{counts['unlabeled']} removals need as many labeled clean rows (found {labeled}), "
            f"and flips at least 2 classes (found {classes})"
        )


def _pick(rng: np.random.Generator, eligible: np.ndarray, count: int) -> np.ndarray:
    """The `count` eligible rows with the lowest keys of this kind, cycling if it asks for more."""
    keys = rng.random(len(eligible))
    candidates = np.flatnonzero(eligible)
    order = candidates[np.argsort(keys[candidates], kind="stable")]
    return np.sort(order[np.arange(count) % max(len(order), 1)]) if count else order[:0]


def _rehash(rows: Rows) -> None:
    broken = rows.manifest["decode_error"].notna().to_numpy()
    rows.manifest["sha256"] = [
        None if bad else pixel_sha256(image) for image, bad in zip(rows.images, broken, strict=True)
    ]


def _per_image(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, size=(n, 1, 1, 1))


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def _exact_duplicate(rows: Rows, rng: np.random.Generator) -> None:
    """The same file twice: inflates one image's weight and is memorised by the generator."""


def _near_duplicate(rows: Rows, rng: np.random.Generator) -> None:
    """A re-saved screenshot of the same picture: moved 1-2 px in a random direction, turned
    1-4°, JPEG quality 70-90. Larger moves make a thin 32 px digit a different picture."""
    for i, image in enumerate(rows.images):
        height, width, _ = image.shape
        turn = rng.uniform(1, 4) * rng.choice([-1, 1])
        length, direction = rng.uniform(1, 2), rng.uniform(0, 2 * np.pi)
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), turn, 1.0)
        matrix[:, 2] += (length * np.cos(direction), length * np.sin(direction))
        moved = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT_101)
        rows.images[i] = _jpeg(moved.reshape(image.shape), int(rng.integers(70, 91)))


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
        buffer, format="JPEG", quality=quality
    )
    return np.asarray(Image.open(buffer)).reshape(image.shape)


def _off_domain(rows: Rows, rng: np.random.Generator) -> None:
    """A photo that does not belong to the domain (scraping noise), given a plausible label."""
    names = _natural_images()
    if len(rows.images) and not names:
        raise ValueError("ingest.corrupt.off_domain: no scikit-image sample loads; install it")
    height, width, channels = rows.images.shape[1:]
    picked = [names[k] for k in rng.integers(len(names), size=len(rows.images))]
    for i, name in enumerate(picked):
        photo = _natural_image(name)
        side = int(min(photo.shape[:2]) * rng.uniform(0.25, 0.6))
        top = rng.integers(photo.shape[0] - side + 1)
        left = rng.integers(photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        crop = crop.convert("L" if channels == 1 else "RGB").resize(
            (width, height), Image.Resampling.LANCZOS
        )
        rows.images[i] = np.asarray(crop).reshape(height, width, channels)
    rows.manifest["source"] = [f"injected:off_domain:skimage.{name}" for name in picked]
    rows.manifest["mode"] = ["L" if _natural_image(name).ndim == 2 else "RGB" for name in picked]
    if rows.classes:
        picks = rng.integers(len(rows.classes), size=len(rows.images))
        rows.manifest["label"] = pd.array([rows.classes[k] for k in picks], dtype="string")


@cache
def _natural_images() -> tuple[str, ...]:
    return tuple(name for name in OFF_DOMAIN_IMAGES if _loads(name))


def _loads(name: str) -> bool:
    try:
        _natural_image(name)
    except Exception as err:  # a missing module, a missing file or a would-be download
        log.debug("skimage.data.%s unavailable: %s", name, err)
        return False
    return True


@cache
def _natural_image(name: str) -> np.ndarray:
    from skimage import data

    photo = np.asarray(getattr(data, name)(), dtype=np.uint8)
    return np.ascontiguousarray(photo[..., :3] if photo.ndim == 3 else photo)


def _blur(rows: Rows, rng: np.random.Generator) -> None:
    """Out of focus or upscaled: Gaussian sigma 1.5-2.5 px per 32 px of image size."""
    size = rows.images.shape[1]
    for i, image in enumerate(rows.images):
        sigma = rng.uniform(1.5, 2.5) * size / 32
        rows.images[i] = cv2.GaussianBlur(image, (0, 0), sigma).reshape(image.shape)


def _noise(rows: Rows, rng: np.random.Generator) -> None:
    """Sensor or scan noise: additive Gaussian, std 40-60 on 0-255."""
    std = _per_image(rng, len(rows.images), 40, 60)
    rows.images[:] = _to_uint8(rows.images + rng.normal(size=rows.images.shape) * std)


def _dark(rows: Rows, rng: np.random.Generator) -> None:
    """Underexposed: brightness scaled to 15-30%."""
    rows.images[:] = _to_uint8(rows.images * _per_image(rng, len(rows.images), 0.15, 0.30))


def _light(rows: Rows, rng: np.random.Generator) -> None:
    """Overexposed, washed out: x * (0.25-0.35) + (160-175), low contrast and a high mean."""
    n = len(rows.images)
    gain, offset = _per_image(rng, n, 0.25, 0.35), _per_image(rng, n, 160, 175)
    rows.images[:] = _to_uint8(rows.images * gain + offset)


def _low_information(rows: Rows, rng: np.random.Generator) -> None:
    """A blank frame or a lens cap: one grey level (16-239) plus noise of std 0.5 (std < 1)."""
    level = rng.integers(16, 240, size=(len(rows.images), 1, 1, 1))
    rows.images[:] = _to_uint8(level + rng.normal(0, 0.5, size=rows.images.shape))


def _odd_size(rows: Rows, rng: np.random.Generator) -> None:
    """A banner or strip 4-8x wider (or taller) than high: the picture on an edge-padded canvas
    of that aspect, squashed back to H×W as decoding does; width/height record the odd size."""
    ratios = rng.integers(4, 9, size=len(rows.images))
    wide = rng.integers(2, size=len(rows.images)).astype(bool)
    for i, image in enumerate(rows.images):
        height, width, _ = image.shape
        axis, extra = (1, (ratios[i] - 1) * width) if wide[i] else (0, (ratios[i] - 1) * height)
        before = int(rng.integers(extra + 1))
        pad = [(0, 0)] * 3
        pad[axis] = (before, extra - before)
        canvas = np.pad(image, pad, mode="edge")
        squashed = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
        rows.images[i] = squashed.reshape(image.shape)
    rows.manifest["width"] *= np.where(wide, ratios, 1)
    rows.manifest["height"] *= np.where(wide, 1, ratios)


def _undecodable(rows: Rows, rng: np.random.Generator) -> None:
    """A truncated download: PNG bytes cut at 30-70%, with the reason the real decoder gives."""
    height, _, channels = rows.images.shape[1:]
    reasons = []
    for image, source in zip(rows.images, rows.manifest["source"], strict=True):
        data = _png(image)
        cut = int(len(data) * rng.uniform(0.3, 0.7))
        reasons.append(_decode_error(source, data[:cut], height, channels))
    rows.images[:] = 0
    rows.manifest["decode_error"] = pd.array(reasons, dtype="string")
    rows.manifest["width"] = 0
    rows.manifest["height"] = 0
    rows.manifest["mode"] = None


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, "PNG")
    return buffer.getvalue()


def _decode_error(source: str, data: bytes, size: int, channels: int) -> str:
    """The real decoder's reason; the bare signature is the fallback if PIL accepts truncation."""
    for attempt in (data, data[:8]):
        item = SourceItem(source, None, EncodedImage(attempt))
        try:
            decode(item, size, channels)
        except DecodeError as err:
            return str(err)
    raise RuntimeError("the decoder accepted a truncated PNG signature")


def _label_flip(rows: Rows, rng: np.random.Generator) -> None:
    """Annotator error: the label moved to a different class, uniformly."""
    flipped = []
    for label in rows.manifest["label"]:
        others = [c for c in rows.classes if c != label]
        flipped.append(others[rng.integers(len(others))])
    rows.manifest["label"] = pd.array(flipped, dtype="string")


def _unlabeled(rows: Rows, rng: np.random.Generator) -> None:
    """A label never given: the image arrives without one, for auto-labeling to fill in."""
    rows.manifest["label"] = pd.array([pd.NA] * len(rows.manifest), dtype="string")


IN_PLACE: dict[str, Corruption] = {
    "blur": _blur,
    "noise": _noise,
    "dark": _dark,
    "light": _light,
    "low_information": _low_information,
    "odd_size": _odd_size,
    "undecodable": _undecodable,
    "label_flip": _label_flip,
    "unlabeled": _unlabeled,
}
ADDED: dict[str, Corruption] = {
    "exact_duplicate": _exact_duplicate,
    "near_duplicate": _near_duplicate,
    "off_domain": _off_domain,
}
