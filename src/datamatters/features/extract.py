"""The one extraction loop: uint8 images through a feature extractor, a batch at a time.

Every feature the pipeline measures with (the judge's features and logits, Inception's pool
features; reference, generated and training images alike) comes out of `extract`, so all of
them see the same pixel layout and the same batching, as in NVIDIA's metrics code.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from datamatters.data.mapped import release_rows


def to_uint8(images_01: Tensor) -> np.ndarray:
    """Generated N×C×H×W floats in [0, 1] -> N×H×W×C uint8, the layout real images are stored in.

    Fakes go through the same 8-bit quantisation as real images, so the metrics cannot tell them
    apart by sub-integer pixel values.
    """
    pixels = (images_01.detach().cpu().float() * 255.0).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()


def extract(
    extractor: nn.Module, images: np.ndarray, batch_size: int = 256, dtype: type = np.float64
) -> np.ndarray:
    """Rows of `extractor` over uint8 N×H×W×C images (a memmap stays on disk), computed in
    float64 and stored as `dtype`.

    Each batch's rows are written into one array made up front, so the features are held once,
    never twice as a list of batches and their concatenation (the judge's 128 float64
    features take 655 MB at 640,000 images).
    """
    check_images(images, "images", minimum=0)
    device = next(extractor.parameters()).device
    out = np.zeros((len(images), extractor.num_features), dtype=dtype)
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.array(images[start : start + batch_size]))
            features = extractor(batch.to(device).permute(0, 3, 1, 2)).double().cpu()
            out[start : start + len(batch)] = features.numpy()
            release_rows(images, start, start + batch_size)
    return out


def check_images(images: np.ndarray, name: str, minimum: int = 2) -> None:
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) < minimum:
        raise ValueError(
            f"{name} images must be uint8 N×H×W×C with N >= {minimum}, "
            f"got {images.dtype} {images.shape}"
        )
