"""A folder of real image files with known defects, for the benchmarks that score against truth.

Each row of a corrupted pool (`datamatters.data.corrupt.inject`) becomes a file, as a user's
folder holds it: class sub-folders, PNGs, an odd-sized picture at its odd size, an undecodable one
truncated. The truth table says which file carries which defect and, for a copy, which file it
copies.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from PIL import Image

from datamatters.data.contract import StageData

COPY_KINDS = ("exact_duplicate", "near_duplicate")


def write_files(pool: StageData, folder: Path) -> pd.DataFrame:
    """One file per row of `pool` under `folder`; returns `path`, `kind` and `original` per file."""
    paths, kinds = [], []
    for image, row in zip(pool.images, pool.manifest.itertuples(), strict=True):
        path = folder / str(row.label) / f"{row.id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        kind = row.injected if pd.notna(row.injected) else None
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        if kind == "odd_size":
            picture = picture.resize((int(row.width), int(row.height)))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        data = buffer.getvalue()
        path.write_bytes(data[: len(data) // 2] if kind == "undecodable" else data)
        paths.append(str(path))
        kinds.append(kind)
    truth = pd.DataFrame({"path": paths, "kind": pd.array(kinds, dtype="string")})
    path_of = dict(zip(pool.manifest["id"], paths, strict=True))
    origin = pool.manifest["source"].str.extract(r"^injected:\w+:of=(.+)$")[0]
    truth["original"] = pd.array(origin.map(path_of), dtype="string")
    return truth
