"""Flow matching (`model=flow`, `model=cflow`): the UNet, training, sampling, checkpoint, export.

Every module here is trained for real (a few Lightning steps on tiny random images, width 8), so
what is tested is what the train stage runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from conftest import compose_config
from datamatters.models.checkpoint import load_checkpoint, save_checkpoint
from datamatters.models.flow import FlowMatching
from datamatters.models.generative import with_classes
from datamatters.models.serving import SamplingGraph, export
from datamatters.models.unet import UNet
from test_models import image_loader, tiny_trainer

CLASSES = ["cat", "dog", "owl"]


def flow_config(
    image_size: int = 32, channels: int = 1, width: int = 8, **overrides: Any
) -> dict[str, Any]:
    """`model=flow` as the pipeline composes it, at width 8 and the given image shape."""
    cfg = compose_config(
        "model=flow", f"data.image_size={image_size}", f"data.channels={channels}"
    ).model
    cfg.network.width = width
    cfg.optimizer.lr = 2e-3  # a few steps must move the zero-initialised output
    return OmegaConf.to_container(cfg, resolve=True) | overrides


def cflow_config(**overrides: Any) -> dict[str, Any]:
    """`model=cflow` completed for three classes, as the train stage completes it."""
    cfg = with_classes(compose_config("model=cflow").model, CLASSES)
    cfg.network.width = 8
    cfg.optimizer.lr = 2e-3
    return OmegaConf.to_container(cfg, resolve=True) | overrides


def train(config: dict[str, Any], steps: int = 3, **loader: Any) -> FlowMatching:
    L.seed_everything(0, verbose=False)
    module = instantiate(config)
    tiny_trainer(max_steps=steps).fit(module, image_loader(**loader))
    return module


@contextmanager
def sampler(module: FlowMatching, **settings: Any) -> Iterator[FlowMatching]:
    """The module with other sampler settings (`method`, `steps`, `guidance_scale`) for a while."""
    saved = {name: getattr(module, name) for name in settings}
    for name, value in settings.items():
        setattr(module, name, value)
    try:
        yield module
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


@contextmanager
def network_calls(module: FlowMatching) -> Iterator[list[int]]:
    """The batch size of every call of the sampling network while the block runs."""
    calls: list[int] = []
    hook = module.sampling_network().register_forward_hook(
        lambda net, args, out: calls.append(args[0].shape[0])
    )
    try:
        yield calls
    finally:
        hook.remove()


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Networks of width 8: more threads only add synchronisation, which stalls on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def flow() -> FlowMatching:
    return train(flow_config(), steps=6)


@pytest.fixture(scope="module")
def cflow() -> FlowMatching:
    return train(cflow_config(), steps=8)


@pytest.mark.parametrize(("image_size", "channels"), [(32, 1), (28, 1), (64, 3)])
def test_flow_trains_and_draws_images_of_every_supported_shape(image_size, channels) -> None:
    network = UNet(channels, image_size, width=8)
    x = torch.randn(2, channels, image_size, image_size)
    assert torch.equal(network(x, torch.rand(2)), torch.zeros_like(x)), "output conv starts at 0"

    module = train(
        flow_config(image_size, channels), steps=2, image_size=image_size, channels=channels
    )
    assert isinstance(module, FlowMatching) and not module.conditional
    assert module.latent_shape == (channels, image_size, image_size)
    images = module.sample(3, seed=0)
    assert images.shape == (3, channels, image_size, image_size)
    assert images.min() >= 0 and images.max() <= 1


def test_sample_is_seeded_batch_size_invariant_and_from_the_average(flow) -> None:
    assert flow.average is not None and int(flow.average.images_seen) == 6 * 8
    first = flow.sample(5, seed=1)
    assert torch.equal(first, flow.sample(5, seed=1))
    assert not torch.equal(first, flow.sample(5, seed=2))
    assert torch.allclose(flow.sample(5, seed=1, batch_size=2), first, atol=1e-6)
    z = torch.randn(3, *flow.latent_shape)
    with torch.no_grad():
        expected = flow.render(flow.sampling_network().eval(), z, None)
    assert torch.allclose(flow.eval().decode(z), expected)


def test_preview_integrates_with_fewer_network_calls(flow) -> None:
    with network_calls(flow) as full:
        flow.sample(4, seed=0)
    with network_calls(flow) as preview:
        flow.sample(4, seed=0, preview=True)
    assert len(full) == flow.steps == 20 and len(preview) == flow.preview_steps == 8
    with sampler(flow, method="heun"), network_calls(flow) as heun:
        flow.sample(4, seed=0, preview=True)
    assert len(heun) == 2 * flow.preview_steps, "a second-order step calls the network twice"


def test_solvers_and_step_counts_draw_different_images(flow) -> None:
    def draw(method: str, steps: int) -> torch.Tensor:
        with sampler(flow, method=method, steps=steps):
            return flow.sample(4, seed=3)

    euler, heun, midpoint = draw("euler", 4), draw("heun", 4), draw("midpoint", 4)
    assert not torch.equal(euler, heun) and not torch.equal(heun, midpoint)
    assert not torch.equal(euler, draw("euler", 8)), "more steps change the integral"


def test_flow_loss_decreases_on_a_fixed_batch() -> None:
    """40 steps on one fixed batch of 32 images: the regression target is learnt."""
    images = torch.rand(32, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(images, torch.zeros(32, dtype=torch.long)), batch_size=32)
    losses: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            losses.append(float(outputs["loss"]))

    L.seed_everything(0, verbose=False)
    config = flow_config()
    config["optimizer"]["lr"] = 5e-3
    module = instantiate(config)
    tiny_trainer(max_steps=40, callbacks=[Record()]).fit(module, loader)
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, losses


def test_training_times_are_uniform_or_logit_normal() -> None:
    torch.manual_seed(0)
    uniform = instantiate(flow_config()).sample_times(4000)
    logit_normal = instantiate(flow_config(time_sampling="logit_normal")).sample_times(4000)
    for t in (uniform, logit_normal):
        assert t.shape == (4000,) and t.min() > 0 and t.max() < 1
    assert uniform.std() == pytest.approx(12**-0.5, rel=0.05)
    middle = ((logit_normal - 0.5).abs() < 0.25).float().mean()
    assert middle > 0.65 > ((uniform - 0.5).abs() < 0.25).float().mean(), "most times mid-path"


def test_gradient_clip_knob_bounds_the_gradient_norm() -> None:
    norms: list[float] = []

    class Watch(L.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            def record(optimizer, args, kwargs) -> None:
                grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
                norms.append(
                    float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
                )

            trainer.optimizers[0].register_step_post_hook(record)

    L.seed_everything(0, verbose=False)
    module = instantiate(flow_config(gradient_clip=1e-3))
    tiny_trainer(max_steps=2, callbacks=[Watch()]).fit(module, image_loader())
    assert len(norms) == 2 and max(norms) <= 1e-3 * 1.001


def test_conditional_flow_draws_by_class_and_guidance(cflow) -> None:
    assert cflow.conditional and cflow.classes == CLASSES and cflow.null_label == 3
    assert cflow.network.label_embedding.num_embeddings == 4, "three classes and the null id"
    cats, dogs = [0, 0, 0, 0], [1, 1, 1, 1]
    first = cflow.sample(4, seed=1, labels=cats)
    assert not torch.equal(first, cflow.sample(4, seed=1, labels=dogs)), "labels matter"
    assert torch.equal(cflow.sample(3, seed=1), cflow.sample(3, seed=1, labels=[0, 1, 2]))

    with network_calls(cflow) as plain:
        cflow.sample(4, seed=1, labels=cats, preview=True)
    with sampler(cflow, guidance_scale=3.0), network_calls(cflow) as guided:
        assert not torch.equal(first, cflow.sample(4, seed=1, labels=cats)), "guidance matters"
    assert plain == [4] * 8, "no guidance: one call on the batch per step"
    assert guided == [8] * 20, "guidance: conditional and null velocities in one doubled batch"


def test_label_dropout_trains_the_null_class() -> None:
    seen: list[torch.Tensor] = []
    L.seed_everything(0, verbose=False)
    module = instantiate(cflow_config(label_dropout=0.5))
    module.network.register_forward_pre_hook(lambda net, args: seen.append(args[2].clone()))
    tiny_trainer(max_steps=6).fit(module, image_loader())
    labels = torch.cat(seen)
    assert len(labels) == 6 * 8
    assert (labels == 3).any() and (labels < 3).any(), "some dropped to null, some kept"

    kept = instantiate(cflow_config(label_dropout=0.0))
    ids = torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.equal(kept.training_condition(ids), ids)
    assert instantiate(flow_config()).training_condition(ids) is None


def test_checkpoint_round_trip_gives_identical_samples(cflow, tmp_path: Path) -> None:
    path = tmp_path / "generator.pt"
    save_checkpoint(cflow, cflow_config(), path)
    loaded = load_checkpoint(path)
    assert type(loaded) is FlowMatching and loaded.classes == CLASSES
    labels = [2, 1, 0, 2]
    assert torch.equal(
        loaded.sample(4, seed=5, labels=labels), cflow.sample(4, seed=5, labels=labels)
    )


@pytest.mark.filterwarnings("ignore:Converting a tensor to a Python boolean")  # group_norm's check
@pytest.mark.filterwarnings("ignore:.*axis name.*will not be used")  # z and labels share `batch`
@pytest.mark.filterwarnings("ignore:.*torch.jit.load. is deprecated")  # what libtorch loads
def test_export_of_a_guided_heun_sampler_matches_the_checkpoint(tmp_path: Path) -> None:
    import onnxruntime

    """The exported graph is the whole unrolled sampler: guidance, both Heun calls, clamping."""
    sampling = {"method": "heun", "steps": 1, "preview_steps": 1, "guidance_scale": 2.0}
    module = train(cflow_config(sampler=sampling), steps=2)
    report = export(module, tmp_path)
    assert report.conditional and report.samples == 64
    assert report.torchscript_max_abs_diff < 1e-4 and report.onnx_max_abs_diff < 1e-4

    # the batch stays dynamic through the doubled (guided) batch: 5 images, not the traced 64
    z, labels = torch.randn(5, 1, 32, 32), torch.tensor([0, 1, 2, 0, 1])
    with torch.no_grad():
        expected = SamplingGraph(module)(z, labels)
        scripted = torch.jit.load(report.torchscript)(z, labels)
    session = onnxruntime.InferenceSession(report.onnx, providers=["CPUExecutionProvider"])
    (served,) = session.run(["images"], {"z": z.numpy(), "labels": labels.numpy()})
    assert (scripted - expected).abs().max() < 1e-4
    assert np.abs(served - expected.numpy()).max() < 1e-4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sampler": {"method": "rk4"}}, "method must be one of euler, midpoint, heun"),
        ({"sampler": {"steps": 0}}, "must be at least 1"),
        ({"sampler": {"step": 4}}, r"unknown keys \['step'\]"),
        ({"time_sampling": "cosine"}, "time_sampling must be one of"),
        ({"label_dropout": 1.0}, "label_dropout must be in"),
    ],
)
def test_bad_settings_are_refused_with_the_key_to_fix(overrides, message) -> None:
    with pytest.raises(Exception, match=message):
        instantiate(flow_config(**overrides))
    with pytest.raises(ValueError, match="unconditional"):
        UNet(1, 32, width=8)(torch.randn(1, 1, 32, 32), torch.rand(1), torch.tensor([0]))
