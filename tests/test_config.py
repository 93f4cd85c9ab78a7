"""The Hydra tree composes for every group option, builds real objects, and matches params.yaml."""

from __future__ import annotations

import albumentations as A
import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from conftest import ROOT, compose_config
from datamatters.cli import main as cli_main
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.data.sources import FolderSource
from datamatters.models.generative import GenerativeModule
from datamatters.quality.checks import Check


def test_params_yaml_equals_composition_of_conf(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli_main(["params", "--check"]) == 0, "params.yaml is stale: run `datamatters params`"


def test_params_check_detects_a_stale_file(tmp_path):
    stale = tmp_path / "params.yaml"
    stale.write_text("data: {}\n")
    assert (
        cli_main(["params", "--check", "-o", str(stale), "--config-dir", str(ROOT / "conf")]) == 1
    )


def test_overrides_choose_group_options():
    cfg = compose_config("model=vae", "trainer=gpu", "augment=none", "data=folder", "data.path=/x")
    assert cfg.model._target_.endswith("VAE")
    assert cfg.trainer.accelerator == "gpu"
    assert cfg.augment.copies == 0
    assert cfg.data.source.root == "/x"


def test_data_sources_instantiate(image_folder):
    assert isinstance(instantiate(compose_config().data.source), Mnist5kSource)
    folder = instantiate(compose_config("data=folder", f"data.path={image_folder}").data.source)
    assert isinstance(folder, FolderSource) and len(list(folder.items())) == 24


@pytest.mark.parametrize("model", ["dcgan", "vae"])
def test_models_instantiate_and_sample_the_data_shape(model):
    cfg = compose_config(f"model={model}")
    module = instantiate(cfg.model)
    assert isinstance(module, GenerativeModule)
    assert module.sample(2, seed=0).shape == (
        2,
        cfg.data.channels,
        cfg.data.image_size,
        cfg.data.image_size,
    )


@pytest.mark.parametrize("augment", ["none", "light"])
def test_augment_pipelines_instantiate(augment):
    pipeline = instantiate(compose_config(f"augment={augment}").augment.pipeline)
    assert isinstance(pipeline, A.Compose)


def test_quality_checks_instantiate():
    checks = {name: instantiate(c) for name, c in compose_config().quality.checks.items()}
    assert checks and all(isinstance(c, Check) and c.enabled for c in checks.values())


def test_cpu_trainer_instantiates():
    trainer = instantiate(compose_config("trainer=cpu").trainer, logger=False)
    assert isinstance(trainer, L.Trainer)
    assert trainer.max_steps == -1, "the train stage sets the steps from train.kimg"


def test_gpu_trainer_instantiates_where_a_gpu_exists():
    cfg = compose_config("trainer=gpu").trainer
    if torch.cuda.is_available():
        assert isinstance(instantiate(cfg, logger=False), L.Trainer)
    else:  # Lightning's own message is what a user without a GPU sees
        with pytest.raises(Exception, match="(?i)gpu|cuda"):
            instantiate(cfg, logger=False)


def test_judge_network_instantiates_with_runtime_class_count():
    cfg = compose_config().judge
    network = instantiate(cfg.network, num_classes=4)
    assert network(torch.rand(2, 1, 32, 32)).shape == (2, 4)
