"""Flow matching training logic around a plain velocity network (`unet.UNet`).

Conditional flow matching with straight paths (Lipman et al. 2023), i.e. rectified flow (Liu et
al. 2023): an image x1 (scaled to [-1, 1]) and Gaussian noise x0 are joined by the line
x_t = (1 - t) x0 + t x1, whose velocity x1 - x0 the network learns to predict by least squares.
Sampling integrates dx/dt = v(x, t) from noise at t = 0 to an image at t = 1 with a fixed-step ODE
solver, as a plain loop over a fixed number of steps, so export traces the whole sampler.

With `classes` it is conditional, with classifier-free guidance (Ho and Salimans 2021): training
replaces a class id with the network's "no class" id with probability `label_dropout`, and the
sampler mixes v = v_uncond + s (v_cond - v_uncond) for a guidance scale s != 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn import Parameter
from torch.optim import Optimizer

from datamatters.models.generative import GenerativeModule

METHODS = {"euler": 1, "midpoint": 2, "heun": 2}  # solver -> network evaluations per step
TIME_SAMPLINGS = ("uniform", "logit_normal")
DEFAULT_SAMPLER = {"method": "euler", "steps": 20, "preview_steps": 8, "guidance_scale": 1.0}


class FlowMatching(GenerativeModule):
    """Rectified flow: learn the velocity from noise to images, integrate it to sample.

    `channels` and `image_size` fix the noise (and image) shape. `sampler` is
    `{method, steps, preview_steps, guidance_scale}`: `method` is `euler` (one network call per
    step), `midpoint` or `heun` (second order, two calls per step); `steps` integrate every draw,
    `preview_steps` the per-epoch FID curve's; `guidance_scale` s weighs the class for a
    conditional model (1: the plain conditional velocity, 0: unconditional; each step then calls
    the network on a doubled batch when s != 1). `time_sampling` draws training times uniformly
    or from a logit-normal (Esser et al. 2024), which trains the middle of the path most.
    `gradient_clip` (a norm, null for none) applies unless the trainer sets its own.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: Callable[[Iterable[Parameter]], Optimizer],
        channels: int,
        image_size: int,
        sampler: Mapping[str, Any] | None = None,
        time_sampling: str = "uniform",
        label_dropout: float = 0.1,
        gradient_clip: float | None = None,
        classes: Sequence[str] | None = None,
        num_classes: int | None = None,
        ema: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__((channels, image_size, image_size), classes, num_classes, ema)
        settings = DEFAULT_SAMPLER | dict(sampler or {})
        unknown = sorted(set(settings) - set(DEFAULT_SAMPLER))
        if unknown:
            raise ValueError(
                f"model.sampler: unknown keys {unknown}; known: {list(DEFAULT_SAMPLER)}"
            )
        if settings["method"] not in METHODS:
            raise ValueError(
                f"model.sampler.method must be one of {', '.join(METHODS)}, "
                f"got {settings['method']!r}"
            )
        if int(settings["steps"]) < 1 or int(settings["preview_steps"]) < 1:
            raise ValueError(
                f"model.sampler: steps={settings['steps']} and "
                f"preview_steps={settings['preview_steps']} must be at least 1"
            )
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(
                f"model.time_sampling must be one of {', '.join(TIME_SAMPLINGS)}, "
                f"got {time_sampling!r}"
            )
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"model.label_dropout must be in [0, 1), got {label_dropout}")
        self.save_hyperparameters(ignore=["network", "optimizer", "classes", "ema", "sampler"])
        self.network = network
        self.optimizer = optimizer
        self.method = str(settings["method"])
        self.steps = int(settings["steps"])
        self.preview_steps = int(settings["preview_steps"])
        self.guidance_scale = float(settings["guidance_scale"])
        self.time_sampling = time_sampling
        self.label_dropout = float(label_dropout)
        self.gradient_clip = gradient_clip
        self.average_weights_of("network")

    @property
    def null_label(self) -> int:
        """The network's "no class" id: one past the last class."""
        return len(self.classes)

    def render(
        self, network: nn.Module, z: Tensor, labels: Tensor | None, preview: bool = False
    ) -> Tensor:
        """Integrate from noise `z` at t=0 to t=1; images in [0, 1].

        A plain loop over a fixed number of steps with times made from `z`, so `torch.jit.trace`
        and the ONNX exporter unroll it into one graph of the whole sampler.
        """
        steps = self.preview_steps if preview else self.steps
        dt = 1.0 / steps
        x = z
        for i in range(steps):
            t = i * dt
            k1 = self.velocity(network, x, t, labels)
            if self.method == "euler":
                x = x + dt * k1
            elif self.method == "midpoint":
                x = x + dt * self.velocity(network, x + 0.5 * dt * k1, t + 0.5 * dt, labels)
            else:  # heun: the trapezoid of the velocities at both ends of the Euler step
                k2 = self.velocity(network, x + dt * k1, t + dt, labels)
                x = x + 0.5 * dt * (k1 + k2)
        return (x.clamp(-1.0, 1.0) + 1.0) / 2.0

    def velocity(self, network: nn.Module, x: Tensor, t: float, labels: Tensor | None) -> Tensor:
        """The (guided) velocity at time `t` for the whole batch."""
        times = x.new_full((x.shape[0],), t)
        if labels is None or self.guidance_scale == 1.0:
            return network(x, times, labels)
        # the conditional and the unconditional velocity in one call on a doubled batch
        null = torch.full_like(labels, self.null_label)
        both = network(torch.cat([x, x]), torch.cat([times, times]), torch.cat([labels, null]))
        # split by the batch's own size (not `chunk`), so an export keeps the batch dynamic
        conditional, unconditional = both.unflatten(0, (2, -1)).unbind(0)
        return unconditional + self.guidance_scale * (conditional - unconditional)

    def sample_times(self, n: int) -> Tensor:
        if self.time_sampling == "logit_normal":
            return torch.sigmoid(torch.randn(n, device=self.device))
        return torch.rand(n, device=self.device)

    def training_condition(self, labels: Tensor) -> Tensor | None:
        """Class ids the network trains on: each one dropped to the null id at `label_dropout`."""
        if not self.conditional:
            return None
        drop = torch.rand(labels.shape, device=labels.device) < self.label_dropout
        return torch.where(drop, torch.full_like(labels, self.null_label), labels)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.update_average(len(batch[0]))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        x1 = images * 2.0 - 1.0
        x0 = torch.randn_like(x1)
        t = self.sample_times(x1.shape[0]).to(x1.dtype)
        xt = torch.lerp(x0, x1, t[:, None, None, None])
        prediction = self.network(xt, t, self.training_condition(labels))
        loss = F.mse_loss(prediction, x1 - x0)
        self.log_dict({"loss": loss}, on_step=True, on_epoch=True, batch_size=x1.shape[0])
        return loss

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        # the trainer's own `gradient_clip_val`, when set, wins over the model's knob
        if gradient_clip_val is None and self.gradient_clip:
            gradient_clip_val, gradient_clip_algorithm = self.gradient_clip, "norm"
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> Optimizer:
        return self.optimizer(self.network.parameters())
