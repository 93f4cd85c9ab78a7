"""Copies in a dataset: identical pixels, and near-copies found by perceptual hash and confirmed.

Both checks keep the first row of each group in manifest order, so which copy survives is stable
when rows are added at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datamatters.errors import InputError
from datamatters.quality.checks import Check, CheckInputs, CheckResult, decodable
from datamatters.quality.features import grey_rows
from datamatters.quality.near_duplicates.canonical_hash import view_hashes
from datamatters.quality.near_duplicates.groups import find_near_duplicates, group_roots
from datamatters.quality.thresholds import setting_error


class ExactDuplicates(Check):
    """Identical decoded pixels: every copy after the first (in manifest order) is flagged."""

    def run(self, inputs: CheckInputs) -> CheckResult:
        repeats = inputs.data.manifest["sha256"].duplicated(keep="first").to_numpy()
        return CheckResult(flagged=inputs.usable & repeats)


class _HashSearch(Check):
    """A check that looks for near-copies by perceptual hash, with its search settings checked."""

    def __init__(
        self,
        enabled: bool = True,
        action: str = "drop",
        max_distance: int = 10,
        min_similarity: float | None = 0.975,
        hash: str = "phash",
        max_neighbours: int = 64,
    ) -> None:
        super().__init__(enabled, action)
        if not 0 <= int(max_distance) <= 32:
            raise setting_error("max_distance", repr(max_distance), "use 0-32 bits")
        if min_similarity is not None and not -1 <= float(min_similarity) <= 1:
            raise setting_error(
                "min_similarity",
                repr(min_similarity),
                "use a correlation in [-1, 1], or null to trust the hash alone",
            )
        if hash not in ("phash", "dhash"):
            raise setting_error("hash", repr(hash), "use phash or dhash")
        if int(max_neighbours) < 1:
            raise setting_error("max_neighbours", repr(max_neighbours), "use 1 or more (64)")
        self.max_distance = int(max_distance)
        self.min_similarity = None if min_similarity is None else float(min_similarity)
        self.hash = hash
        self.max_neighbours = int(max_neighbours)


class NearDuplicates(_HashSearch):
    """Near-copies (moved, slightly turned, re-encoded): all but the first of each group flagged.

    Each image's `max_neighbours` most similar others (by blurred correlation, in O(N·k)) whose
    perceptual hashes are within `max_distance` bits are candidates, and a candidate is
    confirmed when the two images, registered, have a gradient correlation of at least
    `min_similarity` (None: the hash distance alone decides). Groups are the connected pairs;
    the first row of a group in manifest order is kept.

    Exact copies are `exact_duplicates`' to flag: only the first row of each set of identical
    pixels is searched, and its copies join its group in the added columns without being flagged
    here. Columns: `near_duplicate_group` (-1 for none) and `near_duplicate_of` (the kept row's id).
    Score: the best registered similarity to any candidate (NaN when none was close enough).
    """

    def run(self, inputs: CheckInputs) -> CheckResult:
        manifest = inputs.data.manifest
        n = len(manifest)
        usable = inputs.usable
        sha = manifest["sha256"].astype("string")
        repeat = sha.duplicated(keep="first").to_numpy() & sha.notna().to_numpy()
        searched = np.flatnonzero(usable & ~repeat)
        views, codes = inputs.view_hashes(self.hash)
        at = np.searchsorted(inputs.rows, searched)
        matches = find_near_duplicates(
            views, codes, self.max_distance, self.min_similarity, self.max_neighbours, rows=at
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


class ReferenceLeak(_HashSearch):
    """Train-pool images that copy a reference image, exactly or nearly: flagged, never trained on.

    The split hashes each image's own pixels, so a near-copy draws its side independently of its
    original: with `data.reference_fraction` f a pair straddles the split with probability
    2f(1 - f), a third of pairs at the default 0.2. A generator trained on a copy
    of a reference image is rewarded by FID for memorising it, so this check guards the yardstick
    rather than the data under study: it is configured under `reference.leak`, which no sweep knob
    touches, and it runs when `quality.enabled` is false. It searches every decodable reference
    image (`QualityContext.reference`) with the near-duplicate check's own machinery.

    Column: `reference_leak_of` (the id of the reference image copied). Score: the best registered
    similarity to any reference image (NaN when no reference image was a candidate).
    """

    def run(self, inputs: CheckInputs) -> CheckResult:
        data, reference = inputs.data, inputs.context.reference
        if reference is None:
            raise InputError(
                "data/reference",
                "finding copies of reference images needs the reference split",
                "pass it as QualityContext(reference=...) (the quality stage reads data/reference)",
            )
        usable, ref_usable = inputs.usable, np.flatnonzero(decodable(reference.manifest))
        ref_ids = reference.manifest["id"].astype("string").to_numpy(dtype=object)
        of = _same_pixels(data.manifest, reference.manifest.iloc[ref_usable])
        of[~usable] = pd.NA
        copies = int(pd.notna(of).sum())

        searched = inputs.rows
        ref_grey = grey_rows(reference.images, ref_usable)
        ref_views, ref_codes = view_hashes(ref_grey, self.hash, inputs.context.scratch)
        views, codes = inputs.view_hashes(self.hash)
        matches = find_near_duplicates(
            views,
            codes,
            self.max_distance,
            self.min_similarity,
            self.max_neighbours,
            base=(ref_views, ref_codes),
        )
        leaked = searched[matches.pairs[:, 1]]
        copied = pd.Series(ref_ids[ref_usable[matches.pairs[:, 0]]]).groupby(leaked).first()
        unset = pd.isna(of[copied.index.to_numpy()])
        of[copied.index.to_numpy()[unset]] = copied.to_numpy()[unset]  # exact copies come first
        flagged = pd.notna(of)
        scores = None
        if matches.best_similarity is not None:
            scores = np.full(len(usable), np.nan)
            scores[searched] = matches.best_similarity
        return CheckResult(
            flagged,
            scores,
            self.min_similarity,
            columns={"reference_leak_of": pd.array(of, dtype="string")},
            metrics={"exact": copies, "candidates": matches.candidates},
        )


def _same_pixels(manifest: pd.DataFrame, reference: pd.DataFrame) -> np.ndarray:
    """Per row, the id of a reference row with identical pixels (its sha256), else NA."""
    first_id = reference.drop_duplicates("sha256").set_index("sha256")["id"].astype("string")
    return manifest["sha256"].map(first_id).to_numpy(dtype=object, na_value=pd.NA)
