"""Using a trained generator outside the pipeline: `datamatters sample` and the exports."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from conftest import compose_config
from datamatters.cli import main
from datamatters.models.checkpoint import save_checkpoint
from datamatters.models.generative import with_classes
from test_models import image_loader, tiny_trainer


def trained_checkpoint(tmp_path: Path, model: str, classes: list[str] | None = None) -> Path:
    """A checkpoint of the shipped model config (at 32×32), trained a few steps."""
    cfg = compose_config(f"model={model}", "data.image_size=32").model
    if classes:
        cfg = with_classes(cfg, classes)
    L.seed_everything(0, verbose=False)
    module = instantiate(cfg)
    tiny_trainer().fit(module, image_loader())
    path = tmp_path / f"{model}.pt"
    save_checkpoint(module, OmegaConf.to_container(cfg, resolve=True), path)
    return path


@pytest.mark.parametrize("model", ["dcgan", "vae"])
def test_sample_writes_a_grid_an_array_and_a_folder(model, tmp_path, capsys) -> None:
    checkpoint = trained_checkpoint(tmp_path, model)
    grid, array, folder = tmp_path / "grid.png", tmp_path / "s.npy", tmp_path / "pngs"
    for out in (grid, array, folder):
        assert main(["sample", str(checkpoint), "--n", "9", "--seed", "3", "--out", str(out)]) == 0
    assert Image.open(grid).size == (3 * 34 + 2, 3 * 34 + 2)  # 3×3 tiles of 32 px, 2 px padding
    pixels = np.load(array)
    assert pixels.shape == (9, 32, 32, 1) and pixels.dtype == np.uint8
    assert sorted(p.name for p in folder.iterdir())[:2] == ["00000.png", "00001.png"]
    assert np.array_equal(np.asarray(Image.open(folder / "00004.png")), pixels[4, ..., 0])
    again = tmp_path / "again.npy"
    main(["sample", str(checkpoint), "--n", "9", "--seed", "3", "--out", str(again)])
    assert np.array_equal(np.load(again), pixels), "the same seed draws the same images"


def test_sample_draws_the_class_asked_for_and_refuses_unknown_ones(tmp_path, capsys) -> None:
    checkpoint = trained_checkpoint(tmp_path, "cdcgan", ["cat", "dog"])
    cats, dogs = tmp_path / "cats.npy", tmp_path / "dogs.npy"
    for name, out in (("cat", cats), ("dog", dogs)):
        args = ["sample", str(checkpoint), "--n", "4", "--class", name, "--out", str(out)]
        assert main(args) == 0
    assert not np.array_equal(np.load(cats), np.load(dogs))
    assert main(["sample", str(checkpoint), "--class", "owl", "--out", str(cats)]) == 2
    assert "classes are cat, dog" in capsys.readouterr().err


def test_sample_refuses_a_missing_or_foreign_checkpoint(tmp_path, capsys) -> None:
    assert main(["sample", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert main(["sample", str(foreign), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a datamatters checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(("model", "classes"), [("dcgan", None), ("cvae", ["a", "b", "c"])])
def test_exports_match_the_checkpoint_on_the_same_latents(model, classes, tmp_path) -> None:
    import onnxruntime

    checkpoint = trained_checkpoint(tmp_path, model, classes)
    out = tmp_path / "export"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    report = json.loads((out / "export.json").read_text())
    assert report["torchscript_max_abs_diff"] <= 1e-5 and report["onnx_max_abs_diff"] <= 1e-5
    assert report["classes"] == (classes or [])

    # a server's view: other latents and another batch size than the export was traced with
    from datamatters.models.checkpoint import load_checkpoint

    module = load_checkpoint(checkpoint)
    z = torch.randn(5, module.latent_dim, generator=torch.Generator().manual_seed(7))
    labels = None if classes is None else torch.tensor([2, 0, 1, 1, 0])
    expected = module.decode(z, labels).clamp(0, 1).detach().numpy()
    feeds = {"z": z.numpy()} | ({} if labels is None else {"labels": labels.numpy()})
    session = onnxruntime.InferenceSession(str(out / "generator.onnx"))
    assert np.abs(session.run(["images"], feeds)[0] - expected).max() <= 1e-5
    scripted = torch.jit.load(str(out / "generator.ts"))
    inputs = (z,) if labels is None else (z, labels)
    assert torch.allclose(scripted(*inputs), torch.from_numpy(expected), atol=1e-5)
