"""Networks, Lightning modules, checkpoints and callbacks, built as the pipeline builds them."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from dvclive.lightning import DVCLiveLogger
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from conftest import compose_config
from datamatters.models.averaging import WeightAverage
from datamatters.models.callbacks import SampleGrid, make_grid
from datamatters.models.checkpoint import load_checkpoint, save_checkpoint
from datamatters.models.dcgan import DCGAN
from datamatters.models.diffaugment import cutout, diff_augment, parse_policy, translation
from datamatters.models.generative import GenerativeModule, with_classes
from datamatters.models.judge import JudgeClassifier, accuracy
from datamatters.models.judge_network import JudgeNet
from datamatters.models.networks import (
    DCGANDiscriminator,
    DCGANGenerator,
    SNDiscriminator,
    VAEDecoder,
    VAEEncoder,
)
from datamatters.models.progress import EpochSummary
from datamatters.models.vae import VAE

NETWORKS = "datamatters.models.networks"


def adam(lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> dict[str, Any]:
    return {"_target_": "torch.optim.Adam", "_partial_": True, "lr": lr, "betas": list(betas)}


def dcgan_config(image_size: int = 32, channels: int = 1, width: int = 8) -> dict[str, Any]:
    shape = {"channels": channels, "image_size": image_size, "width": width}
    return {
        "_target_": "datamatters.models.dcgan.DCGAN",
        "latent_dim": 16,
        "generator": {"_target_": f"{NETWORKS}.DCGANGenerator", "latent_dim": 16, **shape},
        "discriminator": {"_target_": f"{NETWORKS}.DCGANDiscriminator", **shape},
        "g_optimizer": adam(2e-4, (0.5, 0.999)),
        "d_optimizer": adam(2e-4, (0.5, 0.999)),
    }


def vae_config(image_size: int = 32, channels: int = 1, width: int = 8) -> dict[str, Any]:
    shape = {"channels": channels, "image_size": image_size, "latent_dim": 8, "width": width}
    return {
        "_target_": "datamatters.models.vae.VAE",
        "latent_dim": 8,
        "kl_weight": 1.0,
        "encoder": {"_target_": f"{NETWORKS}.VAEEncoder", **shape},
        "decoder": {"_target_": f"{NETWORKS}.VAEDecoder", **shape},
        "optimizer": adam(1e-3),
    }


CONFIGS = {"dcgan": dcgan_config, "vae": vae_config}


def image_loader(n: int = 16, image_size: int = 32, channels: int = 1) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, channels, image_size, image_size, generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=8)


def tiny_trainer(**overrides: Any) -> L.Trainer:
    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "max_steps": 3,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(**(settings | overrides))


def trained(kind: str) -> GenerativeModule:
    L.seed_everything(0, verbose=False)
    module = instantiate(CONFIGS[kind]())
    tiny_trainer().fit(module, image_loader())
    return module


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[name], p) for name, p in module.named_parameters())


@pytest.mark.parametrize(("image_size", "channels"), [(28, 1), (32, 3), (64, 1)])
def test_networks_fit_every_supported_image_size(image_size: int, channels: int) -> None:
    z = torch.randn(2, 16)
    image = torch.rand(2, channels, image_size, image_size)
    shape = (2, channels, image_size, image_size)

    fake = DCGANGenerator(16, channels, image_size, width=8)(z)
    assert fake.shape == shape and fake.abs().max() <= 1
    assert DCGANDiscriminator(channels, image_size, width=8)(fake).shape == (2,)
    mu, logvar = VAEEncoder(channels, image_size, latent_dim=16, width=8)(image)
    assert mu.shape == logvar.shape == (2, 16)
    assert VAEDecoder(16, channels, image_size, width=8)(mu).shape == shape
    judge = JudgeNet(channels, image_size, num_classes=3, feature_dim=12, width=8)
    assert judge.features(image).shape == (2, 12) and judge(image).shape == (2, 3)


def test_a_linear_output_generator_draws_exact_black_once_rendered() -> None:
    """tanh only nears -1, so its black is faintly grey; the linear output is unbounded and the
    model's rendering clamps it, so pixels below the range come out exactly 0."""
    torch.manual_seed(0)
    config = dcgan_config()
    config["generator"]["output"] = "linear"
    model = instantiate(OmegaConf.create(config))
    with torch.no_grad():
        model.generator.net[-1].bias.fill_(-3.0)  # every raw output well below -1
    raw = model.generator(torch.randn(4, 16))
    assert raw.max() < -1
    assert model.sample(4, seed=0).max() == 0
    with pytest.raises(ValueError, match="output must be 'tanh' or 'linear'"):
        DCGANGenerator(16, 1, 32, output="sigmoid")


@pytest.mark.parametrize("image_size", [30, 33, 4])
def test_unsupported_image_size_is_refused_with_a_clear_message(image_size: int) -> None:
    message = rf"image_size must be a multiple of 4 .* got {image_size}"
    with pytest.raises(ValueError, match=message):
        DCGANGenerator(16, 1, image_size)
    with pytest.raises(ValueError, match=message):
        DCGANDiscriminator(1, image_size)
    with pytest.raises(ValueError, match=message):
        VAEEncoder(1, image_size, 8)
    with pytest.raises(ValueError, match=message):
        JudgeNet(1, image_size, 10)


def test_dcgan_built_from_hydra_config_trains_both_networks() -> None:
    L.seed_everything(0, verbose=False)
    module = instantiate(dcgan_config())
    assert isinstance(module, DCGAN) and module.hparams["latent_dim"] == 16
    assert not module.conditional
    generator, discriminator = snapshot(module.generator), snapshot(module.discriminator)
    trainer = tiny_trainer()
    trainer.fit(module, image_loader())

    for name in ("g_loss", "d_loss"):
        assert torch.isfinite(trainer.callback_metrics[name])
    assert changed(generator, module.generator)
    assert changed(discriminator, module.discriminator)


@pytest.mark.parametrize("d_steps", [1, 3])
def test_gan_steps_its_discriminator_d_steps_times_per_generator_step(d_steps: int) -> None:
    """A budget of batches maps to Lightning's steps through the model, whatever d_steps is."""
    L.seed_everything(0, verbose=False)
    module = instantiate(dcgan_config() | {"d_steps": d_steps})
    d_opt_steps = []
    batches = 6
    trainer = tiny_trainer(max_steps=module.optimizer_steps(batches), max_epochs=-1)
    original = module._optimize

    def counted(optimizer, loss_fn):
        d_opt_steps.append(optimizer.optimizer is trainer.optimizers[1])
        return original(optimizer, loss_fn)

    module._optimize = counted
    trainer.fit(module, image_loader(n=48))

    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == batches
    assert sum(d_opt_steps) == batches
    assert len(d_opt_steps) - sum(d_opt_steps) == batches // d_steps
    assert int(module.average.images_seen if module.average else 0) in (0, 8 * batches)


def test_r3gan_penalises_the_discriminator_gradient_and_trains() -> None:
    L.seed_everything(0, verbose=False)
    config = compose_config("model=r3gan", "model.generator.width=8", "model.discriminator.width=8")
    module = instantiate(config.model)
    real, fake = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1
    plain = instantiate(config.model, r1_gamma=0.0, r2_gamma=0.0)
    plain.load_state_dict(module.state_dict())
    penalised = module._discriminator_loss(real, fake, None)
    assert penalised > plain._discriminator_loss(real, fake, None), "R1 + R2 add to the loss"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in module.discriminator.modules())
    generator = snapshot(module.generator)
    trainer = tiny_trainer(max_steps=4)
    trainer.fit(module, image_loader())
    assert torch.isfinite(trainer.callback_metrics["d_loss"]) and changed(
        generator, module.generator
    )


def test_vae_built_from_hydra_config_trains() -> None:
    L.seed_everything(0, verbose=False)
    module = instantiate(vae_config())
    assert isinstance(module, VAE)
    before = snapshot(module)
    trainer = tiny_trainer()
    trainer.fit(module, image_loader())

    for name in ("loss", "recon_loss", "kl"):
        assert torch.isfinite(trainer.callback_metrics[name])
    assert changed(before, module)


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_sample_is_seeded_in_unit_range_and_restores_train_mode(kind: str) -> None:
    module = instantiate(CONFIGS[kind]())
    module.train()
    frozen = module.decoder if kind == "vae" else module.discriminator
    frozen.eval()

    first = module.sample(5, seed=1)
    assert first.shape == (5, 1, 32, 32)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, module.sample(5, seed=1))
    assert not torch.equal(first, module.sample(5, seed=2))
    assert module.sample(5, seed=1, batch_size=2).allclose(first)
    assert module.training and not frozen.training


def test_fixed_noise_is_the_same_for_every_model_and_seed() -> None:
    torch.manual_seed(1)
    dcgan = instantiate(dcgan_config())
    torch.manual_seed(2)
    other = instantiate(dcgan_config())

    assert torch.equal(dcgan.fixed_noise, other.fixed_noise)
    assert dcgan.sample_fixed().shape == (64, 1, 32, 32)


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_checkpoint_round_trip_gives_identical_samples(kind: str, tmp_path: Path) -> None:
    module = trained(kind)
    path = tmp_path / "models" / "generator.pt"
    save_checkpoint(module, CONFIGS[kind](), path)

    stored = torch.load(path, weights_only=True)
    assert stored["format"] == 1 and stored["config"] == CONFIGS[kind]()
    loaded = load_checkpoint(path)
    assert type(loaded) is type(module) and not loaded.training
    assert torch.equal(loaded.sample(8, seed=3), module.sample(8, seed=3))
    assert [p.name for p in tmp_path.joinpath("models").iterdir()] == ["generator.pt"]


def test_checkpoint_refuses_a_config_that_is_not_plain_data(tmp_path: Path) -> None:
    module = instantiate(vae_config())
    path = tmp_path / "vae.pt"
    with pytest.raises(TypeError, match="config is a DictConfig"):
        save_checkpoint(module, OmegaConf.create(vae_config()), path)
    with pytest.raises(TypeError, match=r"config\.optimizer\.lr is a Tensor"):
        save_checkpoint(module, vae_config() | {"optimizer": {"lr": torch.tensor(1.0)}}, path)
    assert not path.exists()


def test_missing_or_damaged_checkpoint_names_the_file_and_the_stage(tmp_path: Path) -> None:
    missing = tmp_path / "judge.pt"
    with pytest.raises(FileNotFoundError, match=r"judge\.pt.*dvc repro"):
        load_checkpoint(missing)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"garbage\.pt.*dvc repro"):
        load_checkpoint(garbage)

    config = vae_config()
    good = tmp_path / "vae.pt"
    save_checkpoint(instantiate(config), config, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"truncated\.pt.*dvc repro"):
        load_checkpoint(truncated)

    stale = tmp_path / "stale.pt"
    save_checkpoint(instantiate(vae_config(width=4)), config, stale)
    with pytest.raises(ValueError, match=r"stale\.pt does not match the current code"):
        load_checkpoint(stale)


def bright_and_dark(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An easy two-class problem: class 1 images are bright, class 0 dark, both noisy."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    low = np.where(labels == 1, 140, 0)[:, None, None, None]
    images = (low + rng.integers(0, 116, (n, 16, 16, 1))).astype(np.uint8)
    return images, labels


def as_loader(images: np.ndarray, labels: np.ndarray, shuffle: bool) -> DataLoader:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    dataset = TensorDataset(x, torch.from_numpy(labels))
    return DataLoader(dataset, batch_size=32, shuffle=shuffle)


def test_judge_built_from_hydra_config_learns_an_easy_problem(tmp_path: Path) -> None:
    L.seed_everything(0, verbose=False)
    network_config = {
        "_target_": "datamatters.models.judge_network.JudgeNet",
        "channels": 1,
        "image_size": 16,
        "num_classes": 2,
        "feature_dim": 16,
        "width": 8,
    }
    config = {"_target_": "datamatters.models.judge.JudgeClassifier", "network": network_config}
    module = instantiate(config | {"optimizer": adam(1e-2)})
    assert isinstance(module, JudgeClassifier)
    train, test = bright_and_dark(256, seed=0), bright_and_dark(128, seed=1)
    trainer = tiny_trainer(max_steps=-1, max_epochs=3)
    trainer.fit(module, as_loader(*train, shuffle=True), as_loader(*test, shuffle=False))

    assert trainer.callback_metrics["val_acc"] > 0.9
    assert torch.isfinite(trainer.callback_metrics["val_loss"])
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    module.network.train()
    assert accuracy(module.network, *test) > 0.9
    assert module.network.training

    path = tmp_path / "judge.pt"
    save_checkpoint(module.network, network_config, path)
    assert accuracy(load_checkpoint(path), *test) == accuracy(module.network, *test)


def test_make_grid_tiles_images_row_by_row() -> None:
    images = torch.stack([torch.full((3, 2, 2), i / 4) for i in range(5)])
    grid = make_grid(images, nrow=3, padding=1)

    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1, 3) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 0 and grid[1, 4, 0] == 64 and grid[4, 4, 0] == 255
    assert grid[4, 7].tolist() == [0, 0, 0]


def test_sample_grid_writes_a_square_png_beside_dvclive_logging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # DVCLive inspects the Git repository around the working directory
    module = instantiate(dcgan_config())
    path = tmp_path / "plots" / "samples.png"
    logger = DVCLiveLogger(dir=str(tmp_path / "live"), dvcyaml=False, save_dvc_exp=False)
    trainer = tiny_trainer(
        max_steps=-1, max_epochs=1, logger=logger, log_every_n_steps=1, callbacks=[SampleGrid(path)]
    )
    trainer.fit(module, image_loader())

    with Image.open(path) as image:
        assert image.mode == "L"
        assert image.size == (8 * (32 + 2) + 2, 8 * (32 + 2) + 2)
    assert (tmp_path / "live" / "metrics.json").is_file()


def test_epoch_summary_logs_one_line_per_epoch(caplog: pytest.LogCaptureFixture) -> None:
    module = instantiate(vae_config())
    trainer = tiny_trainer(max_steps=-1, max_epochs=2, callbacks=[EpochSummary()])
    with caplog.at_level(logging.INFO, logger="datamatters"):
        trainer.fit(module, image_loader())

    lines = [r.getMessage() for r in caplog.records if r.name == "datamatters"]
    pattern = r"epoch {}/2 kl=\d+\.\d{{3}} loss=\d+\.\d{{3}} recon_loss=\d+\.\d{{3}} \(\d+\.\d s\)"
    assert len(lines) == 2
    for epoch, line in enumerate(lines, start=1):
        assert re.fullmatch(pattern.format(epoch), line), line


def test_checkpoint_naming_untrusted_code_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pt"
    config = {"_target_": "pathlib.Path.touch", "self": str(marker)}
    torch.save({"config": config, "state_dict": {}, "format": 1}, hostile)
    with pytest.raises(ValueError, match=r"names code outside.*pathlib\.Path\.touch"):
        load_checkpoint(hostile)
    assert not marker.exists()


@pytest.mark.parametrize("model", ["cdcgan", "cvae"])
def test_conditional_models_from_conf_train_and_draw_the_class_asked_for(model, tmp_path) -> None:
    """Composed from the shipped config and completed with classes, as the train stage does."""
    cfg = with_classes(compose_config(f"model={model}").model, ["cat", "dog"])
    assert cfg.num_classes == 2 and cfg.classes == ["cat", "dog"]
    L.seed_everything(0, verbose=False)
    module = instantiate(cfg)
    assert module.conditional and module.classes == ["cat", "dog"]
    before = snapshot(module)
    tiny_trainer().fit(module, image_loader())
    assert changed(before, module)

    labels = torch.tensor([0, 1, 1, 0, 1])
    first = module.sample(5, seed=1, labels=labels)
    assert first.shape == (5, 1, 32, 32)
    assert not torch.equal(first, module.sample(5, seed=1, labels=1 - labels)), "labels matter"
    assert torch.equal(module.sample(4, seed=1), module.sample(4, seed=1, labels=[0, 1, 0, 1]))

    path = tmp_path / "generator.pt"
    save_checkpoint(module, OmegaConf.to_container(cfg, resolve=True), path)
    loaded = load_checkpoint(path)
    assert loaded.classes == ["cat", "dog"]
    assert torch.equal(loaded.sample(5, seed=1, labels=labels), first)


def test_conditioning_mistakes_are_refused() -> None:
    unconditional = instantiate(dcgan_config())
    with pytest.raises(ValueError, match="unconditional"):
        unconditional.sample(2, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="conditional on 3 classes: pass labels"):
        DCGANGenerator(16, 1, 32, width=8, num_classes=3)(torch.randn(2, 16))
    config = dcgan_config() | {"classes": ["a", "b"], "num_classes": 3}
    with pytest.raises(Exception, match="num_classes=3 but 2 class names"):
        instantiate(config)


@pytest.mark.parametrize("model", ["dcgan", "vae", "sngan", "csngan", "cdcgan"])
def test_models_from_conf_sample_from_the_average_of_their_weights(model, tmp_path) -> None:
    """The shipped configs average the sampling network; samples and the checkpoint use it."""
    cfg = compose_config(f"model={model}").model
    if "classes" in cfg:
        cfg = with_classes(cfg, ["cat", "dog"])
    L.seed_everything(0, verbose=False)
    module = instantiate(cfg)
    assert module.average is not None
    tiny_trainer(max_steps=6).fit(module, image_loader())
    raw = getattr(module, "decoder" if "vae" in model else "generator").state_dict()
    averaged = module.sampling_network().state_dict()
    generator_steps = 6 if "vae" in model else 3  # a GAN counts two optimizer steps per batch
    assert int(module.average.images_seen) == generator_steps * 8
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw), "the average trails the raw"
    z = torch.randn(3, module.latent_dim)
    labels = module.balanced_labels(3)
    with torch.no_grad():
        expected = module.render(module.sampling_network().eval(), z, labels)
    assert torch.allclose(module.eval().decode(z, labels), expected)

    path = tmp_path / "generator.pt"
    save_checkpoint(module, OmegaConf.to_container(cfg, resolve=True), path)
    assert torch.equal(load_checkpoint(path).sample(4, seed=2), module.sample(4, seed=2))


def test_ema_off_samples_from_the_raw_weights() -> None:
    module = instantiate(dcgan_config() | {"ema": {"enabled": False}})
    assert module.average is None and module.sampling_network() is module.generator


def test_weight_average_follows_the_half_life_rule() -> None:
    network = torch.nn.Linear(1, 1, bias=False)
    average = WeightAverage(network, half_life_images=100, rampup=None)
    assert average.beta(100) == pytest.approx(0.5) and average.beta(50) == pytest.approx(0.5**0.5)
    ramped = WeightAverage(network, half_life_images=100, rampup=0.5)
    ramped.images_seen += 100  # ramp: half-life at most 0.5 x 100 images = 50
    assert ramped.beta(50) == pytest.approx(0.5)
    with torch.no_grad():
        network.weight.fill_(0.0)
        average.update(network, 100)  # the first update copies
        network.weight.fill_(1.0)
        average.update(network, 100)  # one half-life: halfway to the new weights
    assert float(average.network.weight) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="model.ema"):
        WeightAverage(network, half_life_images=0)


def test_sngan_says_when_it_starts_that_it_does_not_train_at_this_budget(caplog) -> None:
    cfg = compose_config("model=sngan", "model.generator.width=8", "model.discriminator.width=8")
    with caplog.at_level(logging.WARNING, logger="datamatters"):
        tiny_trainer(max_steps=2).fit(instantiate(cfg.model), image_loader())
    assert "model=sngan collapsed at the default budget" in caplog.text
    assert "model=dcgan" in caplog.text


def test_sngan_discriminator_is_spectrally_normalised_with_a_projection_head() -> None:
    net = SNDiscriminator(3, 32, width=8, num_classes=4)
    x, labels = torch.randn(5, 3, 32, 32), torch.tensor([0, 1, 2, 3, 0])
    assert net(x, labels).shape == (5,)
    assert not torch.equal(net(x, labels), net(x, (labels + 1) % 4)), "the class is projected"
    for module in net.features:
        if isinstance(module, torch.nn.Conv2d):
            sigma = torch.linalg.matrix_norm(module.weight.detach().flatten(1), ord=2)
            assert float(sigma) <= 1.05  # one power iteration per call keeps it near 1
    with pytest.raises(ValueError, match="pass labels"):
        net(x)
    assert SNDiscriminator(1, 64, width=8)(torch.randn(2, 1, 64, 64)).shape == (2,)


def test_diffaugment_is_differentiable_seeded_and_checked() -> None:
    leaf = torch.rand(4, 3, 16, 16, requires_grad=True)
    x = leaf * 2 - 1
    names = parse_policy("color,translation,cutout")
    torch.manual_seed(0)
    first = diff_augment(x, names)
    torch.manual_seed(0)
    assert torch.equal(first, diff_augment(x, names))
    first.sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0, "gradients reach the generator"
    torch.manual_seed(1)
    shifted = translation(torch.ones(8, 1, 16, 16))
    assert (shifted == 0).any() and shifted.shape == (8, 1, 16, 16)
    holes = cutout(torch.ones(8, 1, 16, 16))
    assert ((holes == 0).flatten(1).sum(1) <= 64).all() and (holes == 0).any()
    assert parse_policy("") == () and parse_policy(None) == () and parse_policy([]) == ()
    assert parse_policy(["translation", "cutout"]) == ("translation", "cutout")
    with pytest.raises(ValueError, match="unknown transform.*'flip'"):
        parse_policy("translation,flip")


def test_dcgan_with_diffaugment_from_conf_trains_and_logs_with_dvclive(tmp_path: Path) -> None:
    """As the train stage runs it: composed config nodes (a list, the ema settings) included."""
    L.seed_everything(0, verbose=False)
    cfg = compose_config("model.diffaugment=[translation,cutout]").model
    module = instantiate(cfg)
    assert module.augmentations == ("translation", "cutout")
    before = snapshot(module.generator)
    logger = DVCLiveLogger(dir=str(tmp_path / "live"), dvcyaml=False, save_dvc_exp=False)
    tiny_trainer(logger=logger).fit(module, image_loader())
    assert changed(before, module.generator)
