"""Each extractor's features of the reference split, computed once by their own DVC stage.

They depend on the reference split and the extractors alone, so no training or data-quality
experiment ever recomputes them (Inception takes minutes on a CPU), and every experiment is
measured against the very same rows: the reference images its own checks kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from datamatters.atomic import atomic_path
from datamatters.data.contract import StageData
from datamatters.errors import InputError
from datamatters.features.extract import extract
from datamatters.pipeline import rerun_fix

ROWS = "rows.parquet"  # id and label of each feature row, in order


def compute(
    kept: StageData, extractors: dict[str, nn.Module], batch_size: int
) -> dict[str, np.ndarray]:
    """Each extractor's features of `kept`, the reference rows its checks kept (`kept_rows`)."""
    return {
        name: extract(extractor, kept.images, batch_size) for name, extractor in extractors.items()
    }


def save(folder: str | Path, kept: StageData, features: dict[str, np.ndarray]) -> None:
    """`<extractor>.npy` per extractor plus the rows they belong to, written as one directory."""
    rows = kept.manifest[["id", "label"]].reset_index(drop=True)
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        rows.to_parquet(tmp / ROWS, index=False)
        for name, values in features.items():
            np.save(tmp / f"{name}.npy", values)


def load(folder: str | Path, name: str) -> tuple[np.ndarray, pd.DataFrame]:
    """One extractor's features and their rows; a missing one is an error that names the fix."""
    folder = Path(folder)
    path = folder / f"{name}.npy"
    if not path.is_file():
        fix = rerun_fix(path)
        if name == "inception":
            fix = (
                f"set eval.reference.inception=true and {fix}, "
                "or measure without it: -S eval.metrics.inception_samples=0"
            )
        raise InputError(path, f"no {name} features of the reference split", fix)
    return np.load(path), pd.read_parquet(folder / ROWS)
