"""The judge's network: a small domain classifier whose features replace Inception's.

Kept apart from the generators' networks so that editing a generator never re-runs the stages
that depend on the judge (`judge`, `quality`, `labeling`, `reference_features`).
"""

from __future__ import annotations

from itertools import pairwise

from torch import Tensor, nn

from datamatters.models.layout import scale_layout, widths


class JudgeNet(nn.Module):
    """Small domain classifier whose penultimate activations replace Inception features.

    Inception was trained on 299×299 photographs; a classifier trained on the reference split
    itself gives features that separate what matters in this domain (e.g. digit identity).
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        feature_dim: int = 128,
        width: int = 32,
    ) -> None:
        super().__init__()
        num_scales, base = scale_layout(image_size)
        sizes = [width, *widths(width, num_scales)]
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1, bias=False)]
        for c_in, c_out in pairwise(sizes):
            layers += [
                nn.BatchNorm2d(c_in),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_in, c_out, 3, 2, 1, bias=False),
            ]
        layers += [nn.BatchNorm2d(sizes[-1]), nn.ReLU(inplace=True), nn.Flatten()]
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Sequential(
            nn.Linear(sizes[-1] * base * base, feature_dim), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Linear(feature_dim, num_classes)
        self.feature_dim = feature_dim
        self.channels, self.image_size = channels, image_size  # what it must be shown

    def features(self, x: Tensor) -> Tensor:
        return self.embed(self.trunk(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
