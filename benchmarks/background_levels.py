"""How much of a generator's Inception FID is its faint background, not its digits' shapes?

    python benchmarks/background_levels.py [--checkpoint models/generator.pt] [--n 500]
                                           [--floor 24] [--ceiling 200]

Draws `--n` seeded samples from the checkpoint and scores them three ways against this project's
Inception reference features: as drawn; with every pixel at or below `--floor` set to black (the
faint haze around strokes that real digits, black at 0, lack); and with the levels stretched so
that `--floor` maps to 0 and `--ceiling` to 255. Also prints the share of pixels at exactly 0,
between 1 and 29, and at 250 or more, for the samples and for as many real training images.
A diagnosis only: a post-processed sample is not what the model draws.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from datamatters.data.contract import read_stage_data
from datamatters.features import reference_cache
from datamatters.features.extract import extract, to_uint8
from datamatters.features.inception import InceptionFeatures
from datamatters.models.checkpoint import load_checkpoint
from datamatters.scores.frechet import Gaussian, frechet_distance


def levels(images: np.ndarray) -> str:
    pixels = images.reshape(-1)
    shares = {
        "0": pixels == 0,
        "1-29": (pixels > 0) & (pixels < 30),
        ">=250": pixels >= 250,
    }
    return ", ".join(f"{name}: {mask.mean():.1%}" for name, mask in shares.items())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=Path("models/generator.pt"))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--floor", type=int, default=24)
    parser.add_argument("--ceiling", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    real, _ = reference_cache.load("data/reference_features", "inception")
    reference = Gaussian.of(real)
    network = InceptionFeatures()
    drawn = to_uint8(load_checkpoint(args.checkpoint).sample(args.n, seed=args.seed))
    training = np.asarray(read_stage_data("data/augmented").images[: args.n])
    print(f"pixel levels, samples: {levels(drawn)}")
    print(f"pixel levels, training images: {levels(training)}")
    floored = np.where(drawn <= args.floor, 0, drawn).astype(np.uint8)
    scale = 255.0 / (args.ceiling - args.floor)
    stretched = np.clip((drawn.astype(np.float64) - args.floor) * scale, 0, 255)
    variants = {
        "as drawn": drawn,
        f"pixels <= {args.floor} set to 0": floored,
        f"levels {args.floor}..{args.ceiling} to 0..255": stretched.round().astype(np.uint8),
    }
    for name, images in variants.items():
        fid = frechet_distance(reference, extract(network, images, 50))
        print(f"fid_inception_{args.n} {name}: {fid:.1f}", flush=True)


if __name__ == "__main__":
    main()
