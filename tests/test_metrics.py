"""FID, KID and IS on judge features: the one extraction loop, then pure scores on the rows."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from datamatters.data.contract import StageData
from datamatters.features import reference_cache
from datamatters.features.extract import extract, to_uint8
from datamatters.features.judge import JudgeFeatures, JudgeLogits
from datamatters.metrics.evaluation import measure_images
from datamatters.metrics.names import sample_tag
from datamatters.models.judge_network import JudgeNet
from datamatters.scores.memorization import memorization

KEYS = {"fid_judge", "kid_judge_mean", "kid_judge_std", "is_judge_mean", "is_judge_std"}


def generative_metrics(
    real: np.ndarray,
    fake: np.ndarray,
    judge: JudgeNet,
    batch_size: int = 256,
    kid_subset_size: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """The evaluate stage's own path: `real`'s judge features computed and saved as the
    reference_features stage saves them, then `measure_images` on `fake`; the scores renamed
    without the sample count, so tests of different sizes read the same keys."""
    reference = StageData(
        real, pd.DataFrame({"id": [f"r{i}" for i in range(len(real))], "label": "x"})
    )
    cfg = OmegaConf.create(
        {
            "batch_size": batch_size,
            "kid_subset_size": kid_subset_size,
            "bootstrap_rounds": 0,
            "prdc_k": 3,
            "seed": seed,
            "inception_samples": 0,
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        features = reference_cache.compute(reference, {"judge": JudgeFeatures(judge)}, batch_size)
        reference_cache.save(Path(folder) / "features", reference, features)
        scores = measure_images(fake, judge, Path(folder) / "features", cfg).scores
    prefix = f"_judge_{sample_tag(len(fake))}"
    renamed = {name.replace(prefix, "_judge"): value for name, value in scores.items()}
    return {name: value for name, value in renamed.items() if name in KEYS}


@pytest.fixture(scope="module")
def judge() -> JudgeNet:
    """An untrained judge: its features are a fixed random function of the pixels, enough here."""
    torch.manual_seed(0)
    return JudgeNet(channels=1, image_size=16, num_classes=4, feature_dim=16, width=8).eval()


def images(n: int, low: int, high: int, seed: int) -> np.ndarray:
    """Noise images with pixels in [low, high): different ranges, different distributions."""
    return np.random.default_rng(seed).integers(low, high, (n, 16, 16, 1), dtype=np.uint8)


def test_fid_of_a_set_against_itself_is_zero(judge: JudgeNet) -> None:
    real = images(300, 0, 256, seed=0)
    assert abs(generative_metrics(real, real, judge)["fid_judge"]) < 1e-3


def test_fid_ranks_different_distributions_above_halves_of_one(judge: JudgeNet) -> None:
    dark = images(400, 0, 128, seed=0)
    bright = images(200, 128, 256, seed=1)
    between_halves = generative_metrics(dark[:200], dark[200:], judge)
    between_sets = generative_metrics(dark[:200], bright, judge)

    assert between_sets["fid_judge"] > between_halves["fid_judge"] > 0
    assert between_sets["kid_judge_mean"] > between_halves["kid_judge_mean"]


def test_inception_score_of_a_judge_without_opinion_is_one() -> None:
    uniform = JudgeNet(channels=1, image_size=16, num_classes=4, feature_dim=16, width=8)
    torch.nn.init.zeros_(uniform.classifier.weight)
    torch.nn.init.zeros_(uniform.classifier.bias)
    scores = generative_metrics(images(50, 0, 256, 0), images(50, 0, 256, 1), uniform.eval())

    assert scores["is_judge_mean"] == pytest.approx(1.0, abs=1e-6)
    assert scores["is_judge_std"] == pytest.approx(0.0, abs=1e-6)


def test_metrics_have_flat_names_and_clamp_the_kid_subset(judge: JudgeNet, tmp_path: Path) -> None:
    np.save(tmp_path / "real.npy", images(40, 0, 256, seed=0))
    real = np.load(tmp_path / "real.npy", mmap_mode="r")
    scores = generative_metrics(real, images(30, 0, 256, 1), judge, batch_size=16)

    assert set(scores) == KEYS
    assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values())


def test_metrics_are_seeded_and_leave_the_global_rng_alone(judge: JudgeNet) -> None:
    real, fake = images(60, 0, 256, seed=0), images(60, 0, 64, seed=1)
    state = torch.get_rng_state()
    first = generative_metrics(real, fake, judge, kid_subset_size=20, seed=3)

    assert torch.equal(state, torch.get_rng_state())
    assert generative_metrics(real, fake, judge, kid_subset_size=20, seed=3) == first
    other = generative_metrics(real, fake, judge, kid_subset_size=20, seed=4)
    assert other["kid_judge_mean"] != first["kid_judge_mean"]


def test_extraction_refuses_anything_but_uint8_images(judge: JudgeNet) -> None:
    with pytest.raises(ValueError, match="must be uint8 N×H×W×C"):
        extract(JudgeFeatures(judge), images(10, 0, 256, 0).astype(np.float32))
    with pytest.raises(ValueError, match="must be uint8 N×H×W×C"):
        extract(JudgeFeatures(judge), images(10, 0, 256, 0)[0])


def test_extractors_take_uint8_or_unit_floats_and_use_running_statistics(judge: JudgeNet) -> None:
    pixels = torch.from_numpy(images(8, 0, 256, seed=0)).permute(0, 3, 1, 2)
    expected = judge.features(pixels.float() / 255)
    features = JudgeFeatures(judge)
    judge.train()
    try:
        from_uint8, from_float = features(pixels), features(pixels.float() / 255)
        logits = JudgeLogits(judge)(pixels)
        assert judge.training
    finally:
        judge.eval()

    assert features.num_features == 16 and isinstance(features.num_features, int)
    assert from_uint8.dtype == torch.float64 and from_uint8.shape == (8, 16)
    assert torch.allclose(from_uint8, expected.double(), atol=1e-6)
    assert torch.allclose(from_float, from_uint8)
    assert logits.shape == (8, 4) and not logits.requires_grad


def test_to_uint8_rounds_clamps_and_moves_channels_last() -> None:
    samples = torch.tensor([-0.1, 0.5, 1.2, 0.999]).reshape(1, 1, 2, 2).expand(2, 3, 2, 2)
    pixels = to_uint8(samples)

    assert pixels.shape == (2, 2, 2, 3) and pixels.dtype == np.uint8
    assert pixels[0, :, :, 0].tolist() == [[0, 128], [255, 255]]


def test_memorization_counts_samples_that_copy_training_rows():
    rng = np.random.default_rng(0)
    train, reference, new = (rng.normal(size=(n, 8)) for n in (2000, 500, 1000))
    copies = train[:1000] + rng.normal(scale=1e-3, size=(1000, 8))
    assert memorization(train, reference, new) < 0.05, "new draws are not copies"
    assert memorization(train, reference, copies) == 1.0
    half = np.concatenate([new[:500], copies[:500]])
    assert 0.45 <= memorization(train, reference, half) <= 0.55
    with pytest.raises(ValueError, match="needs training, reference and generated"):
        memorization(train, reference, new[:0])
