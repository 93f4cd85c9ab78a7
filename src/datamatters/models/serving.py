"""A trained generator outside the pipeline: sample images from a checkpoint, export it for serving.

The exported graph is exactly what the evaluate stage samples from: the averaged weights when the
model keeps them, BatchNorm in eval mode, output in [0, 1]. It takes latents (and, for a
conditional model, class ids) so a server draws its own noise; `export` checks each file against
the checkpoint on the same latents and reports the largest difference.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from datamatters.atomic import atomic_path, write_json
from datamatters.features.extract import to_uint8
from datamatters.models.callbacks import make_grid, save_png
from datamatters.models.generative import GenerativeModule

PARITY_SAMPLES = 64
PARITY_SEED = 0


class SamplingGraph(nn.Module):
    """noise N×latent_shape (and class ids N) -> images N×C×H×W in [0, 1], frozen for export.

    A model whose sampler loops over its network (a flow's ODE steps) is traced with the loop
    unrolled at its configured number of steps, so the exported graph is the whole sampler.
    """

    def __init__(self, model: GenerativeModule) -> None:
        super().__init__()
        self.network = model.sampling_network()
        # the model's mapping to [0, 1] as a plain callable: the LightningModule itself is not
        # part of the graph (tracing it would reach for its trainer)
        self._render = model.render
        self.eval()

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self._render(self.network, z, labels).clamp(0.0, 1.0)


def class_ids(model: GenerativeModule, class_name: str | None, n: int) -> Tensor | None:
    """Class ids for `n` samples: all of `class_name`, or balanced when none is asked for."""
    if class_name is None:
        return None
    if not model.conditional:
        raise ValueError(f"--class {class_name}: this model is unconditional and draws no classes")
    if class_name not in model.classes:
        known = ", ".join(model.classes)
        raise ValueError(f"--class {class_name}: the model's classes are {known}")
    return torch.full((n,), model.classes.index(class_name), dtype=torch.long)


def write_samples(images: Tensor, out: Path) -> Path:
    """A PNG grid (`.png`), a uint8 N×H×W×C array (`.npy`) or a folder of PNGs (anything else)."""
    pixels = to_uint8(images)  # the 8-bit quantisation the evaluate stage measures
    if out.suffix == ".png":
        save_png(make_grid(images, nrow=math.ceil(math.sqrt(len(images)))), out)
    elif out.suffix == ".npy":
        with atomic_path(out) as tmp, tmp.open("wb") as handle:
            np.save(handle, pixels)
    else:
        with atomic_path(out) as tmp:
            tmp.mkdir()
            for index, image in enumerate(pixels):
                save_png(image, tmp / f"{index:05d}.png")
    return out


@dataclass(frozen=True)
class ExportReport:
    """What was written and how far each file's images are from the checkpoint's."""

    torchscript: str
    onnx: str
    torchscript_max_abs_diff: float
    onnx_max_abs_diff: float
    samples: int
    conditional: bool


def export(model: GenerativeModule, out_dir: str | os.PathLike[str]) -> ExportReport:
    """Write `generator.ts` (TorchScript) and `generator.onnx`, each checked on the same latents."""
    import onnxruntime

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = SamplingGraph(model)
    inputs = parity_inputs(model)
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated upstream in favour of torch.export, but it is still what a
        # libtorch (C++) server loads
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated")
        # GroupNorm's shape check (a flow's UNet) holds for any batch: the trace stays general
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        expected = graph(*inputs).numpy()
        traced = torch.jit.freeze(torch.jit.trace(graph, inputs))
    script_path, onnx_path = out_dir / "generator.ts", out_dir / "generator.onnx"
    with atomic_path(script_path) as tmp:
        traced.save(str(tmp))
    names = ["z", "labels"][: len(inputs)]
    batch = torch.export.Dim("batch")
    # the exporter's notes on operators of packages not installed here (torchvision) and
    # upstream deprecations say nothing about this model
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with atomic_path(onnx_path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")
        warnings.filterwarnings("ignore", message=".*axis name: batch will not be used")
        torch.onnx.export(
            graph,
            inputs,
            str(tmp),
            input_names=names,
            output_names=["images"],
            dynamic_shapes=[{0: batch} for _ in inputs],
            dynamo=True,
            external_data=False,  # one file (the weights inline): what a server copies
            verbose=False,
        )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated")
        scripted = torch.jit.load(str(script_path))(*inputs).numpy()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {name: value.numpy() for name, value in zip(names, inputs, strict=True)}
    served = session.run(["images"], feeds)[0]
    report = ExportReport(
        torchscript=str(script_path),
        onnx=str(onnx_path),
        torchscript_max_abs_diff=float(np.abs(scripted - expected).max()),
        onnx_max_abs_diff=float(np.abs(served - expected).max()),
        samples=len(expected),
        conditional=model.conditional,
    )
    write_json(out_dir / "export.json", asdict(report) | {"classes": model.classes})
    return report


def parity_inputs(model: GenerativeModule) -> tuple[Tensor, ...]:
    """The latents (and balanced class ids) every export is checked on."""
    generator = torch.Generator().manual_seed(PARITY_SEED)
    z = torch.randn(PARITY_SAMPLES, *model.latent_shape, generator=generator)
    labels = model.balanced_labels(PARITY_SAMPLES)
    return (z,) if labels is None else (z, labels)
