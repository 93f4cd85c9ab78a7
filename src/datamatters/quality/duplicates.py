"""Copies in a dataset: identical pixels, and near-copies found by perceptual hash and confirmed.

Both checks keep the first row of each group in manifest order, so which copy survives is stable
when rows are added at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datamatters.data.contract import StageData
from datamatters.quality.checks import Check, CheckResult, QualityContext, decodable
from datamatters.quality.near_duplicates import find_near_duplicates, group_roots
from datamatters.stage import StageError


class ExactDuplicates(Check):
    """Identical decoded pixels: every copy after the first (in manifest order) is flagged."""

    name = "exact_duplicates"

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        manifest = data.manifest
        usable = decodable(manifest)
        repeats = manifest["sha256"].duplicated(keep="first").to_numpy()
        return CheckResult(flagged=usable & repeats)


class NearDuplicates(Check):
    """Near-copies (moved, slightly turned, re-encoded): all but the first of each group flagged.

    Perceptual hashes within `max_distance` bits are candidates (found sub-quadratically), and a
    candidate is confirmed when the two images, registered, have a gradient correlation of at
    least `min_similarity` (None: the hash distance alone decides). Groups are the connected
    pairs; the first row of a group in manifest order is kept.

    Exact copies are `exact_duplicates`' to flag: only the first row of each set of identical
    pixels is searched, and its copies join its group in the added columns without being flagged
    here. Columns: `near_duplicate_group` (-1 for none) and `near_duplicate_of` (the kept row's id).
    Score: the best registered similarity to any candidate (NaN when none was close enough).
    """

    name = "near_duplicates"

    def __init__(
        self,
        enabled: bool = True,
        action: str = "drop",
        max_distance: int = 10,
        min_similarity: float | None = 0.975,
        hash: str = "phash",
    ) -> None:
        super().__init__(enabled, action)
        where = f"quality.checks.{self.name}"
        if not 0 <= int(max_distance) <= 32:
            raise StageError(
                "quality", "params.yaml", f"{where}.max_distance={max_distance}", "use 0-32 bits"
            )
        if min_similarity is not None and not -1 <= float(min_similarity) <= 1:
            raise StageError(
                "quality",
                "params.yaml",
                f"{where}.min_similarity={min_similarity}",
                "use a correlation in [-1, 1], or null to trust the hash alone",
            )
        if hash not in ("phash", "dhash"):
            raise StageError(
                "quality", "params.yaml", f"{where}.hash={hash!r}", "use phash or dhash"
            )
        self.max_distance = int(max_distance)
        self.min_similarity = None if min_similarity is None else float(min_similarity)
        self.hash = hash

    def run(self, data: StageData, context: QualityContext | None = None) -> CheckResult:
        manifest = data.manifest
        n = len(manifest)
        usable = decodable(manifest)
        sha = manifest["sha256"].astype("string")
        repeat = sha.duplicated(keep="first").to_numpy() & sha.notna().to_numpy()
        searched = np.flatnonzero(usable & ~repeat)
        matches = find_near_duplicates(
            np.asarray(data.images[searched]) if len(searched) else data.images[:0],
            self.max_distance,
            self.min_similarity,
            self.hash,
        )
        roots = searched[group_roots(len(searched), matches.pairs)]
        root_of = np.full(n, -1, dtype=np.int64)
        root_of[searched] = roots
        # exact copies join the group of the first row with the same pixels
        first_row = pd.Series(searched, index=sha.iloc[searched].to_numpy())
        copies = np.flatnonzero(usable & repeat)
        if len(copies):
            originals = first_row.reindex(sha.iloc[copies].to_numpy()).to_numpy()
            known = ~pd.isna(originals)
            root_of[copies[known]] = root_of[originals[known].astype(np.int64)]
        member_counts = np.bincount(root_of[searched], minlength=n) if len(searched) else None
        in_group = np.zeros(n, dtype=bool)
        if member_counts is not None:
            in_group[searched] = member_counts[root_of[searched]] > 1
            in_group[copies] = (root_of[copies] >= 0) & (
                member_counts[np.maximum(root_of[copies], 0)] > 1
            )
        flagged = np.zeros(n, dtype=bool)
        flagged[searched] = in_group[searched] & (root_of[searched] != searched)
        group = np.full(n, -1, dtype=np.int64)
        kept_rows = np.unique(root_of[in_group])
        group[in_group] = np.searchsorted(kept_rows, root_of[in_group])
        ids = manifest["id"].astype("string").to_numpy(dtype=object, na_value=pd.NA)
        of = np.full(n, pd.NA, dtype=object)
        duplicate = in_group & (root_of != np.arange(n))
        of[duplicate] = ids[root_of[duplicate]]
        scores = None
        if matches.best_similarity is not None:
            scores = np.full(n, np.nan)
            scores[searched] = matches.best_similarity
        return CheckResult(
            flagged,
            scores,
            self.min_similarity,
            columns={
                "near_duplicate_group": group,
                "near_duplicate_of": pd.array(of, dtype="string"),
            },
            metrics={"groups": len(kept_rows), "candidates": matches.candidates},
        )
