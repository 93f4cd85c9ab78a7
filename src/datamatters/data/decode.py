"""Decode one image into the pipeline's single mode and size, or say why it cannot be.

PIL's decompression-bomb guard stays on: a bomb becomes a reason, like any other bad file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from datamatters.data.sources import SourceItem, UnsupportedFile

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # uint8 H×W×C at the configured size
    width: int  # as found in the file, before resizing
    height: int
    mode: str


def decode(item: SourceItem, image_size: int, channels: int) -> Decoded:
    """Raises DecodeError with a human-readable reason for anything that is not a usable image."""
    try:
        with item.open() as image:
            image.load()
            width, height, mode = image.width, image.height, image.mode
            normalised = _to_mode(ImageOps.exif_transpose(image), channels)
            resized = normalised.resize((image_size, image_size), Image.Resampling.LANCZOS)
    except UnsupportedFile as err:
        raise DecodeError(str(err)) from err
    except Image.DecompressionBombError as err:
        raise DecodeError(f"too large, refused as a decompression bomb ({err})") from err
    except (OSError, ValueError, SyntaxError) as err:  # PIL's ways of saying "corrupt"
        raise DecodeError(f"cannot decode: {err}") from err
    pixels = np.asarray(resized, dtype=np.uint8).reshape(image_size, image_size, channels)
    return Decoded(pixels, width, height, mode)


class DecodeError(Exception):
    pass


def _to_mode(image: Image.Image, channels: int) -> Image.Image:
    if image.mode in SIXTEEN_BIT_MODES:
        wide = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(np.clip(np.rint(wide), 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return image.convert("L" if channels == 1 else "RGB")
