"""The "real data" floor: FID of real held-out train-pool images against the reference split.

    python benchmarks/real_data_floor.py   # after `dvc repro` (reads data/quality and the features)

No generator can be expected to beat real images of the same domain, so this is the number to
read a generator's FID against. Uses the evaluate stage's own settings (params.yaml): the same
sample counts, the same bootstrap, the same extractors.
"""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from datamatters.data.contract import read_stage_data
from datamatters.features import reference_cache
from datamatters.features.extract import extract
from datamatters.features.inception import InceptionFeatures
from datamatters.features.judge import JudgeFeatures
from datamatters.metrics.evaluation import feature_metrics
from datamatters.metrics.names import sample_tag
from datamatters.models.checkpoint import load_checkpoint


def main() -> None:
    cfg = OmegaConf.load("params.yaml").eval.metrics
    pool = read_stage_data("data/quality")
    kept = np.flatnonzero(pool.manifest["keep"].to_numpy())
    chosen = np.sort(np.random.default_rng(cfg.seed).choice(kept, cfg.num_samples, replace=False))
    images = np.asarray(pool.images[chosen])
    for name, extractor, count in (
        ("judge", JudgeFeatures(load_checkpoint("models/judge.pt")), cfg.num_samples),
        ("inception", InceptionFeatures(), cfg.inception_samples),
    ):
        real, _ = reference_cache.load("data/reference_features", name)
        scores = feature_metrics(real, extract(extractor, images[:count], 50), cfg)
        print(
            f"{name}, {sample_tag(count)} real train-pool images vs {len(real)} reference: "
            f"FID {scores['fid']:.2f} (95% interval {scores['fid_ci95_low']:.2f}"
            f"-{scores['fid_ci95_high']:.2f}), precision {scores['precision']:.3f}, "
            f"recall {scores['recall']:.3f}"
        )


if __name__ == "__main__":
    main()
