"""CPU time of the flow's velocity network against off-the-shelf UNets of a similar size.

    python benchmarks/unet_speed.py [--threads 2] [--batch 64] [--repeats 7] [--width 32]

Times one training step (forward, MSE backward, Adam step) on a batch of 32×32 grey images and
one sampling call (eval mode, no gradients; one step of the Euler sampler) of the same batch, for
`datamatters.models.unet.UNet` as `conf/model/flow.yaml` builds it, `diffusers.UNet2DModel` and
torchcfm's `UNetModelWrapper` (when installed), the latter two configured to a comparable
parameter count, and the DCGAN of `model=dcgan` (one generator and one discriminator step) as
the per-image yardstick. Models take turns within every repeat, so a machine shared with other
work slows them alike; the median of `--repeats` after two warm-up rounds is reported.

Optional packages (never let pip replace the CPU torch):
    pip install --no-deps diffusers==0.31.0 huggingface-hub==0.26.5 importlib_metadata zipp \
        safetensors regex torchcfm pot
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamatters.models.networks import DCGANDiscriminator, DCGANGenerator
from datamatters.models.unet import UNet

SIZE, CHANNELS = 32, 1


class Velocity(nn.Module):
    """Adapt a network to the call `net(x, t)` with t in [0, 1]."""

    def __init__(self, network: nn.Module, kind: str) -> None:
        super().__init__()
        self.network, self.kind = network, kind

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        if self.kind == "diffusers":  # positional embedding of a diffusion step in [0, 1000]
            return self.network(x, t * 1000).sample
        return self.network(t, x)  # torchcfm: (t, x)


def diffusers_unet(width: int, groups: int) -> nn.Module:
    from diffusers import UNet2DModel

    # the same layout: 4 resolutions (32..4), widths ×(1, 2, 2, 2), one block per resolution on
    # the way down (diffusers' up path has layers_per_block + 1), attention at the coarsest only
    return UNet2DModel(
        sample_size=SIZE,
        in_channels=CHANNELS,
        out_channels=CHANNELS,
        block_out_channels=(width, 2 * width, 2 * width, 2 * width),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=groups,
        attention_head_dim=32,
    )


def torchcfm_unet(width: int, groups: int) -> nn.Module:
    from torchcfm.models.unet import UNetModel

    # the same layout; torchcfm normalises with 32 groups, so `width` must be a multiple of 32
    # (here `groups` is unused: the package offers no knob)
    return UNetModel(
        dim=(CHANNELS, SIZE, SIZE),
        num_channels=width,
        num_res_blocks=1,
        channel_mult=(1, 2, 2, 2),
        attention_resolutions="4",  # the 4×4 map, as ours and diffusers'
        num_head_channels=32,
    )


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def matched_width(build: Callable[[int, int], nn.Module], target: int, step: int) -> int:
    """The width (a multiple of `step`) whose parameter count is nearest `target`."""
    return min(range(step, 129, step), key=lambda w: abs(count(build(w, step)) - target))


def candidates(width: int) -> dict[str, nn.Module]:
    ours = UNet(CHANNELS, SIZE, width=width, max_multiplier=2)  # as conf/model/flow.yaml
    nets: dict[str, nn.Module] = {
        f"datamatters UNet w{width}": ours,
        f"datamatters UNet w{width} + attention": UNet(CHANNELS, SIZE, width, attention=True),
    }
    try:
        matched = matched_width(diffusers_unet, count(ours), 4)
        nets[f"diffusers UNet2DModel w{width}"] = Velocity(diffusers_unet(width, 8), "diffusers")
        nets[f"diffusers UNet2DModel w{matched}"] = Velocity(
            diffusers_unet(matched, 4), "diffusers"
        )
    except ImportError:
        print("diffusers not installed: skipped")
    try:
        nets[f"torchcfm UNetModelWrapper w{width}"] = Velocity(torchcfm_unet(width, 32), "torchcfm")
    except ImportError:
        print("torchcfm not installed: skipped")
    return nets


def gmacs(net: nn.Module, *inputs: Tensor) -> float:
    """Multiply-accumulates (billions) of `net(*inputs)` for one image, in convolutions and
    linear layers (attention's own products, on the 4×4 map, are negligible)."""
    total = [0]

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        out = out.sample if hasattr(out, "sample") else out
        if isinstance(module, nn.Conv2d):
            total[0] += out[0].numel() * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            total[0] += out[0].numel() * module.in_features

    hooks = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.no_grad():
        net(*(value[:1] for value in inputs))
    for handle in hooks:
        handle.remove()
    return total[0] / 1e9


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    x = torch.rand(args.batch, CHANNELS, SIZE, SIZE) * 2 - 1
    t = torch.rand(args.batch)
    nets = candidates(args.width)
    steps: dict[str, Callable[[], object]] = {}
    calls: dict[str, Callable[[], object]] = {}
    params: dict[str, int] = {}
    macs: dict[str, float] = {}
    for name, net in nets.items():
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        params[name] = count(net)
        macs[name] = gmacs(net, x, t)

        def step(net=net, optimizer=optimizer) -> None:
            net.train()
            optimizer.zero_grad()
            F.mse_loss(net(x, t), x).backward()
            optimizer.step()

        @torch.no_grad()
        def call(net=net) -> None:
            net.eval()
            net(x, t)

        steps[name], calls[name] = step, call

    generator = DCGANGenerator(64, CHANNELS, SIZE, width=32)
    discriminator = DCGANDiscriminator(CHANNELS, SIZE, width=32)
    g_opt = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    name = "DCGAN (model=dcgan, both nets)"
    params[name] = count(generator) + count(discriminator)
    # a GAN step: G once, D on the reals and twice on the fakes (its own step and G's)
    macs[name] = gmacs(generator, torch.randn(1, 64)) + 3 * gmacs(discriminator, x)

    def gan_step() -> None:
        fake = generator(torch.randn(args.batch, 64))
        d_opt.zero_grad()
        d_loss = F.softplus(-discriminator(x)).mean() + F.softplus(discriminator(fake.detach()))
        d_loss.mean().backward()
        d_opt.step()
        g_opt.zero_grad()
        F.softplus(-discriminator(fake)).mean().backward()
        g_opt.step()

    @torch.no_grad()
    def gan_call() -> None:
        generator.eval()
        generator(torch.randn(args.batch, 64))
        generator.train()

    steps[name], calls[name] = gan_step, gan_call

    times: dict[str, dict[str, list[float]]] = {n: {"step": [], "call": []} for n in steps}
    for repeat in range(args.repeats + 2):
        for n in steps:
            step_ms, call_ms = timed(steps[n]), timed(calls[n])
            if repeat >= 2:  # two warm-up rounds
                times[n]["step"].append(step_ms)
                times[n]["call"].append(call_ms)

    print(
        f"batch {args.batch}, {SIZE}×{SIZE}×{CHANNELS}, {args.threads} threads, "
        f"median of {args.repeats} after 2 warm-up rounds"
    )
    header = (
        f"{'network':38} {'params':>10} {'fwd GMAC/img':>12} {'train ms/step':>14} {'img/s':>7} "
        f"{'call ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for n, measured in times.items():
        step_ms = statistics.median(measured["step"])
        call_ms = statistics.median(measured["call"])
        print(
            f"{n:38} {params[n]:>10,} {macs[n]:>12.3f} {step_ms:>14.0f} "
            f"{args.batch / step_ms * 1000:>7.0f} "
            f"{call_ms:>8.0f}"
        )


if __name__ == "__main__":
    main()
