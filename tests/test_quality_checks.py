"""The quality checks on real MNIST digits and colour scenes with corruptions made here, and the
near-duplicate candidate search."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image
from scipy import ndimage

from datamatters.data.contract import StageData, pixel_sha256
from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.errors import InputError
from datamatters.quality import features
from datamatters.quality.assess import assess, configured_check
from datamatters.quality.checks import (
    Blur,
    CheckInputs,
    Dark,
    Light,
    LowInformation,
    Noise,
    OddSize,
    QualityContext,
    Undecodable,
)
from datamatters.quality.duplicates import ExactDuplicates, NearDuplicates, ReferenceLeak
from datamatters.quality.near_duplicates import neighbours
from datamatters.quality.near_duplicates.canonical_hash import view_hashes
from datamatters.quality.near_duplicates.groups import find_near_duplicates, group_roots
from datamatters.quality.near_duplicates.neighbours import neighbour_pairs
from datamatters.quality.outliers import Outliers

PER_KIND = 4
# which check must flag each corruption made below
EXPECTED = {
    "blur": "blur",
    "noise": "noise",
    "dark": "dark",
    "light": "light",
    "blank": "low_information",
    "odd_aspect": "odd_size",
    "tiny_original": "odd_size",
    "photo": "outliers",
    "near_copy": "near_duplicates",
    "exact_copy": "exact_duplicates",
    "undecodable": "undecodable",
}


def default_checks() -> dict:
    return {
        "undecodable": Undecodable(),
        "exact_duplicates": ExactDuplicates(),
        "near_duplicates": NearDuplicates(),
        "blur": Blur(),
        "noise": Noise(),
        "dark": Dark(),
        "light": Light(),
        "low_information": LowInformation(),
        "odd_size": OddSize(),
        "outliers": Outliers(),
    }


@pytest.fixture(scope="module")
def mnist() -> StageData:
    items = list(Mnist5kSource().items())
    return ingest(items, 32, 1, 0.2, 0, limit=2000).train


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buffer, format="JPEG", quality=quality
    )
    return np.asarray(Image.open(buffer)).reshape(image.shape)


def moved(image: np.ndarray, dx: float, dy: float, degrees: float = 0.0) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D((15.5, 15.5), degrees, 1.0)
    matrix[:, 2] += (dx, dy)
    out = cv2.warpAffine(image, matrix, (32, 32), borderMode=cv2.BORDER_REFLECT_101)
    return out.reshape(image.shape)


def photo_crops(count: int, seed: int) -> np.ndarray:
    """Grey 32×32 crops of the photographs shipped inside scikit-learn's wheel."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    crops = []
    for k in range(count):
        photo = photos[k % len(photos)]
        side = int(rng.integers(60, 200))
        top = int(rng.integers(0, photo.shape[0] - side))
        left = int(rng.integers(0, photo.shape[1] - side))
        grey = cv2.cvtColor(photo[top : top + side, left : left + side], cv2.COLOR_RGB2GRAY)
        crops.append(cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)[..., None])
    return np.stack(crops)


def corrupt(clean: StageData) -> tuple[StageData, pd.Series]:
    """Corruptions made in place on disjoint rows, plus added copies; returns each row's kind."""
    images = np.array(clean.images, copy=True)
    manifest = clean.manifest.copy()
    kind = pd.Series(pd.NA, index=manifest.index, dtype="string")
    rng = np.random.default_rng(7)
    rows = iter(rng.permutation(len(images)))

    def take(name: str) -> list[int]:
        picked = [int(next(rows)) for _ in range(PER_KIND)]
        kind.iloc[picked] = name
        return picked

    for row in take("blur"):
        images[row] = cv2.GaussianBlur(images[row], (0, 0), 1.5).reshape(32, 32, 1)
    for row in take("noise"):
        noisy = images[row] + rng.normal(0, 25, size=images[row].shape)
        images[row] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    for row in take("dark"):
        images[row] = (images[row] * 0.35).astype(np.uint8)
    for row in take("light"):
        images[row] = (images[row] * 0.3 + 170).astype(np.uint8)
    for row in take("blank"):
        images[row] = 77
    for row in take("odd_aspect"):
        manifest.loc[row, ["width", "height"]] = [28, 140]
    for row in take("tiny_original"):
        manifest.loc[row, ["width", "height"]] = [6, 6]
    for row, crop in zip(take("photo"), photo_crops(PER_KIND, seed=3), strict=True):
        images[row] = crop
    for row in take("undecodable"):
        images[row] = 0
        manifest.loc[row, ["width", "height"]] = [0, 0]
        manifest.loc[row, "decode_error"] = "cannot decode: test"
    originals = {"near_copy": take("source_of_near_copy"), "exact_copy": take("source_of_copy")}
    kind[kind.isin(["source_of_near_copy", "source_of_copy"])] = pd.NA
    manifest["sha256"] = [
        None if pd.notna(err) else pixel_sha256(image)
        for image, err in zip(images, manifest["decode_error"], strict=True)
    ]
    added_images, added_rows = [], []
    for name, sources in originals.items():
        for k, row in enumerate(sources):
            if name == "near_copy":
                copy = jpeg(moved(images[row], 1 + k % 2, -1, degrees=2.0 * (k % 2)), 75 + 5 * k)
            else:
                copy = images[row].copy()
            added_images.append(copy)
            added_rows.append(
                manifest.iloc[row].to_dict()
                | {"id": f"{name}-{k}", "source": f"test:{name}:of={manifest['id'].iloc[row]}"}
                | {"sha256": pixel_sha256(copy)}
            )
    out = StageData(
        np.concatenate([images, np.stack(added_images)]),
        pd.concat([manifest, pd.DataFrame(added_rows)], ignore_index=True).astype(
            {"label": "string", "decode_error": "string"}
        ),
    )
    kinds = pd.concat(
        [kind, pd.Series([r["id"].rsplit("-", 1)[0] for r in added_rows], dtype="string")],
        ignore_index=True,
    )
    return out, kinds


def of_kind(kinds: pd.Series, kind: str) -> np.ndarray:
    return (kinds == kind).fillna(False).to_numpy(dtype=bool)


@pytest.fixture(scope="module")
def corrupted(mnist) -> tuple[StageData, pd.Series]:
    return corrupt(mnist)


@pytest.fixture(scope="module")
def assessed(corrupted) -> tuple[pd.DataFrame, dict, pd.Series]:
    data, kinds = corrupted
    out, report = assess(data, default_checks())
    return out.manifest, report, kinds


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_check_flags_its_corruption(assessed, kind):
    manifest, _, kinds = assessed
    rows = manifest[of_kind(kinds, kind)]
    assert len(rows) == PER_KIND
    caught = rows["issues"].map(lambda issues: EXPECTED[kind] in issues)
    assert caught.all(), f"{EXPECTED[kind]} missed {kind} rows {rows['id'][~caught].tolist()}"


def test_clean_digits_are_almost_never_flagged(assessed):
    manifest, _, kinds = assessed
    clean = manifest[kinds.isna().to_numpy()]
    assert len(clean) > 1500
    per_check = pd.Series([i for issues in clean["issues"] for i in issues]).value_counts()
    assert (per_check <= 0.005 * len(clean)).all(), per_check.to_dict()
    assert clean["issues"].map(len).gt(0).mean() <= 0.01


def test_near_duplicate_groups_name_the_kept_member(assessed):
    manifest, report, _ = assessed
    by_id = manifest.set_index("id")
    for k in range(PER_KIND):
        copy = by_id.loc[f"near_copy-{k}"]
        original_id = copy["source"].rsplit("of=", 1)[1]
        original = by_id.loc[original_id]
        assert copy["near_duplicate_of"] == original_id
        assert copy["near_duplicate_group"] == original["near_duplicate_group"] >= 0
        assert "near_duplicates" not in original["issues"] and original["keep"]
        assert pd.isna(original["near_duplicate_of"]), "the kept member points nowhere"
        assert not copy["keep"]
    exact = by_id.loc["exact_copy-0"]
    assert exact["issues"] == ["exact_duplicates"], "an exact copy is exact_duplicates' alone"
    assert report["near_duplicates_groups"] == manifest["near_duplicate_group"].max() + 1
    assert (manifest["near_duplicate_group"] >= -1).all()


def test_undecodable_rows_are_never_scored(assessed):
    manifest, _, kinds = assessed
    broken = manifest[of_kind(kinds, "undecodable")]
    scores = broken.filter(like="score_")
    assert len(scores.columns) >= 8 and scores.isna().all().all()
    assert broken["issues"].map(lambda issues: issues == ["undecodable"]).all()
    assert (broken["near_duplicate_group"] == -1).all() and not broken["keep"].any()


def test_report_has_resolved_thresholds(assessed):
    _, report, _ = assessed
    for name in ("blur", "noise", "dark", "light", "low_information", "odd_size", "outliers"):
        assert np.isfinite(report[f"{name}_threshold"]), name
    assert report["low_information_min_std"] == 2.0
    assert 0 < report["odd_size_min_side"] < 28


def test_flags_are_the_scores_past_the_reported_threshold(assessed):
    manifest, report, _ = assessed
    low = {"blur": True, "dark": True, "noise": False, "light": False}
    for name, low_is_bad in low.items():
        scores, threshold = manifest[f"score_{name}"], report[f"{name}_threshold"]
        past = scores < threshold if low_is_bad else scores > threshold
        flagged = manifest["issues"].map(lambda issues, n=name: n in issues)
        assert (past.to_numpy() == flagged.to_numpy()).all(), name


def test_relative_thresholds_follow_the_dataset_absolute_ones_do_not(mnist):
    dimmed = StageData((mnist.images * 0.5).astype(np.uint8), mnist.manifest)
    relative = Dark().run(CheckInputs(mnist)), Dark().run(CheckInputs(dimmed))
    assert relative[1].threshold == pytest.approx(relative[0].threshold / 2, rel=0.05)
    assert relative[1].flagged.sum() == relative[0].flagged.sum() == 0, "uniformly dim is normal"
    absolute = Dark(threshold={"mode": "absolute", "value": 150}).run(CheckInputs(dimmed))
    assert absolute.threshold == 150 and absolute.flagged.all()
    stricter = Blur(threshold={"mode": "relative", "z": 1.0}).run(CheckInputs(mnist))
    assert (
        stricter.threshold > Blur().run(CheckInputs(mnist)).threshold and stricter.flagged.sum() > 0
    )


def test_low_information_keeps_an_absolute_floor_for_blank_images(mnist):
    images = np.array(mnist.images[:50], copy=True)
    images[:] = 128  # a whole dataset of blanks: relative to itself, nothing is unusual
    images[:, 0, 0] = 129
    result = LowInformation().run(CheckInputs(StageData(images, mnist.manifest.iloc[:50])))
    assert result.flagged.all() and result.metrics["blank"] == 50


def configured(check: str, key: str, **settings) -> None:
    """Builds `datamatters.quality.<check>` with `settings` as the params section `key` would."""
    cfg = OmegaConf.create({"_target_": f"datamatters.quality.{check}", **settings})
    configured_check(cfg, key)


def test_bad_settings_are_errors_naming_the_params_key_that_set_them():
    blur_mode = r"^params.yaml: quality\.checks\.blur\.threshold\.mode='quantile'\. Fix"
    with pytest.raises(InputError, match=blur_mode):
        configured("checks.Blur", "quality.checks.blur", threshold={"mode": "quantile", "z": 3})
    dark_value = r"^params.yaml: reference\.quality\.checks\.dark\.threshold\.value=missing"
    with pytest.raises(InputError, match=dark_value):
        configured("checks.Dark", "reference.quality.checks.dark", threshold={"mode": "absolute"})
    with pytest.raises(InputError, match=r"quality.checks.near_duplicates.hash='ahash'"):
        configured("duplicates.NearDuplicates", "quality.checks.near_duplicates", hash="ahash")
    with pytest.raises(InputError, match=r"^params.yaml: threshold.value=missing"):
        Dark(threshold={"mode": "absolute"})  # built by hand: named within the check


def test_brightness_is_streamed_and_the_hashes_computed_once_per_run(corrupted, monkeypatch):
    data, _ = corrupted
    batch_rows, hashed = [], []
    brightness, greys = features.luminance, features.grey_rows
    monkeypatch.setattr(features, "CHUNK_BYTES", 256 * data.images[0].nbytes)  # 256 rows
    monkeypatch.setattr(
        features, "luminance", lambda images: batch_rows.append(len(images)) or brightness(images)
    )
    monkeypatch.setattr(features, "grey_rows", lambda *args: hashed.append(args) or greys(*args))
    assess(data, default_checks())
    assert len(data.images) > 256 and max(batch_rows) <= 256, "never the whole dataset at once"
    assert len(hashed) == 1, "the near-duplicate and reference-leak searches share the hashes"


def test_a_chunk_holds_a_fixed_number_of_pixels_whatever_the_image_size():
    grey_32 = np.zeros((1, 32, 32, 1), np.uint8)
    rgb_64 = np.zeros((1, 64, 64, 3), np.uint8)
    assert features.chunk_rows(grey_32) == 4096 and features.chunk_rows(rgb_64) == 341


def test_assess_is_deterministic(corrupted):
    data, _ = corrupted
    first, report = assess(data, default_checks())
    again, report_again = assess(data, default_checks())
    pd.testing.assert_frame_equal(first.manifest, again.manifest)
    assert report == report_again


def test_near_duplicates_find_moved_turned_reencoded_copies_not_other_digits(mnist):
    rng = np.random.default_rng(11)
    sources = rng.choice(len(mnist.images), 40, replace=False)
    copies = np.stack(
        [
            jpeg(
                moved(
                    mnist.images[row],
                    *rng.uniform(-2, 2, size=2),
                    degrees=rng.uniform(-4, 4),
                ),
                int(rng.integers(70, 91)),
            )
            for row in sources
        ]
    )
    n = len(mnist.images)
    manifest = pd.concat(
        [mnist.manifest, mnist.manifest.iloc[sources].assign(id=[f"c{k}" for k in range(40)])],
        ignore_index=True,
    )
    manifest["sha256"] = [f"{k}" for k in range(len(manifest))]
    result = NearDuplicates().run(
        CheckInputs(StageData(np.concatenate([mnist.images, copies]), manifest))
    )
    of = pd.Series(result.columns["near_duplicate_of"]).fillna("")
    found = sum(of[n + k] == mnist.manifest["id"].iloc[row] for k, row in enumerate(sources))
    assert found >= 0.85 * len(sources)
    assert result.flagged[:n].mean() <= 0.005, "distinct digits are not near-duplicates"


def scenes(n: int, size: int, seed: int) -> np.ndarray:
    """Distinct uint8 colour scenes: a gradient and a few filled shapes, lightly textured."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    ramp = np.linspace(0, 1, size)[None, :, None]
    for k in range(n):
        start, end = rng.uniform(0, 255, (2, 3))
        image = np.ascontiguousarray(np.broadcast_to(start + (end - start) * ramp, (size, size, 3)))
        image = image.astype(np.uint8)
        for _ in range(int(rng.integers(3, 7))):
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            centre = tuple(int(c) for c in rng.integers(0, size, 2))
            axes = tuple(int(a) for a in rng.integers(3, size // 3, 2))
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        out[k] = np.clip(image + rng.normal(0, 4, image.shape), 0, 255)
    return out


def test_near_duplicates_find_reencoded_colour_copies_brighter_or_darker():
    """Re-saved photos: JPEG 75-95 with the brightness moved by up to 8 levels and the contrast
    by 5%. Registration compares brightness, so it must not read the shift as motion."""
    rng = np.random.default_rng(5)
    originals = scenes(300, 64, seed=1)
    sources = rng.choice(len(originals), 30, replace=False)
    copies = []
    for row in sources:
        pixels = (originals[row] - 127.5) * rng.uniform(0.95, 1.05) + 127.5
        shifted = np.clip(np.rint(pixels + rng.uniform(-8, 8)), 0, 255).astype(np.uint8)
        copies.append(jpeg(shifted, int(rng.integers(75, 96))))
    images = np.concatenate([originals, np.stack(copies)])
    manifest = pd.DataFrame({"id": [f"s{k}" for k in range(len(images))], "label": 0})
    manifest["sha256"] = manifest["id"]
    manifest["decode_error"] = pd.array([pd.NA] * len(images), dtype="string")
    result = NearDuplicates().run(CheckInputs(StageData(images, manifest)))
    of = pd.Series(result.columns["near_duplicate_of"]).fillna("")
    n = len(originals)
    found = sum(of[n + k] == f"s{row}" for k, row in enumerate(sources))
    assert found >= 0.95 * len(sources)
    assert not result.flagged[:n].any(), "distinct scenes are not near-duplicates"


def test_reference_leak_flags_train_copies_of_reference_images_only(mnist):
    """Near-copies whose original sits in the reference split; the within-split ones are left to
    `near_duplicates`, and an exact copy is named too."""
    rng = np.random.default_rng(5)
    reference, pool = (
        mnist.select(np.arange(len(mnist.images)) < 400),
        mnist.select(np.arange(len(mnist.images)) >= 400),
    )
    originals = rng.choice(len(reference.images), 20, replace=False)
    copies = np.stack(
        [
            jpeg(moved(reference.images[r], *rng.uniform(-2, 2, 2), rng.uniform(-4, 4)), 80)
            for r in originals
        ]
    )
    copies[0] = reference.images[originals[0]]  # an exact copy
    within = pool.images[:5].copy()  # copies of train images stay the near-duplicate check's
    images = np.concatenate([pool.images, copies, within])
    manifest = pd.concat(
        [pool.manifest, reference.manifest.iloc[originals], pool.manifest.iloc[:5]],
        ignore_index=True,
    ).assign(id=lambda m: [f"t{k}" for k in range(len(m))])
    manifest["sha256"] = [pixel_sha256(image) for image in images]
    result = ReferenceLeak().run(
        CheckInputs(StageData(images, manifest), QualityContext(reference=reference))
    )
    n = len(pool.images)
    of = pd.Series(result.columns["reference_leak_of"]).fillna("")
    named = [of[n + k] == reference.manifest["id"].iloc[r] for k, r in enumerate(originals)]
    assert named[0] and sum(named) >= 0.9 * len(originals)
    assert result.metrics["exact"] == 1
    assert not result.flagged[n + len(originals) :].any()
    assert result.flagged[:n].mean() <= 0.005, "distinct digits are not leaks"
    with pytest.raises(InputError, match="needs the reference split"):
        ReferenceLeak().run(CheckInputs(StageData(images, manifest)))


def test_reference_leak_settings_are_checked_under_their_own_key():
    with pytest.raises(InputError, match=r"^params.yaml: reference\.leak\.max_distance=40"):
        configured("duplicates.ReferenceLeak", "reference.leak", max_distance=40)


def test_outliers_use_the_features_they_are_given(mnist):
    n = len(mnist.images)
    features = np.random.default_rng(0).normal(size=(n, 8))
    features[5] += 40.0
    result = Outliers().run(CheckInputs(mnist, QualityContext(features=features)))
    assert result.flagged[5] and result.flagged.sum() <= 0.005 * n
    with pytest.raises(InputError, match="one feature row per manifest row"):
        Outliers().run(CheckInputs(mnist, QualityContext(features=features[:10])))
    sampled = Outliers()
    sampled.max_reference = 300  # a large group is searched among a fixed sample of itself
    again = sampled.run(CheckInputs(mnist, QualityContext(features=features)))
    assert again.flagged[5] and np.corrcoef(again.scores, result.scores)[0, 1] > 0.8


def test_default_thresholds_flag_few_clean_photo_crops():
    data = pytest.importorskip("skimage.data")
    names = ("astronaut", "coffee", "chelsea", "camera", "moon", "rocket", "brick", "clock")
    photos = [np.asarray(getattr(data, name)(), dtype=np.uint8) for name in names]
    photos = [p[..., :3] if p.ndim == 3 else np.stack([p] * 3, axis=-1) for p in photos]
    rng = np.random.default_rng(0)
    crops = []
    for k in range(500):
        photo = photos[k % len(photos)]
        side = int(min(photo.shape[:2]) * rng.uniform(0.25, 0.6))
        top = int(rng.integers(photo.shape[0] - side + 1))
        left = int(rng.integers(photo.shape[1] - side + 1))
        crop = photo[top : top + side, left : left + side]
        crops.append(cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA))
    images = np.stack(crops)
    manifest = pd.DataFrame(
        {
            "id": [f"{k:04d}" for k in range(len(images))],
            "sha256": [pixel_sha256(image) for image in images],
            "label": pd.Series([None] * len(images), dtype="string"),
            "width": 640,
            "height": 480,
            "decode_error": pd.Series([None] * len(images), dtype="string"),
        }
    )
    out, report = assess(StageData(images, manifest), default_checks())
    per_check = {k: v for k, v in report.items() if k.endswith("_flagged")}
    assert max(per_check.values()) <= 0.01 * len(images), per_check
    assert out.manifest["issues"].map(len).gt(0).mean() <= 0.03, per_check


# --- the candidate search ----------------------------------------------------------------------


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    """Random unit rows, a third of them noisy copies of others: clusters, as one domain has."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    for k in rng.choice(n, n // 3, replace=False):
        rows[k] = rows[rng.integers(n)] + rng.normal(0, 0.1, dim)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force_neighbours(rows: np.ndarray, k: int) -> set[tuple[int, int]]:
    similarity = rows @ rows.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return {tuple(sorted((i, int(j)))) for i, row in enumerate(nearest) for j in row}


@pytest.mark.parametrize("k", [1, 4, 16])
def test_neighbour_pairs_are_each_rows_k_nearest(k):
    rows = unit_rows(1500, 24, seed=k)
    found = neighbour_pairs(rows, k)
    assert set(map(tuple, found.tolist())) == brute_force_neighbours(rows, k)
    assert (found[:, 0] < found[:, 1]).all() and len(np.unique(found, axis=0)) == len(found)
    assert len(found) <= k * len(rows), "at most k candidates per row: O(N·k)"


def test_neighbour_pairs_with_a_base_pair_each_row_with_its_nearest_base_rows():
    rows = unit_rows(600, 24, seed=0)
    base, queries = rows[:200], rows[200:]
    found = neighbour_pairs(queries, 5, base)
    assert set(map(tuple, found.tolist())) == {
        (int(b), q) for q, row in enumerate(queries) for b in np.argsort(-(base @ row))[:5]
    }, "each row is paired with its 5 nearest base rows, as (base row, row)"
    assert len(neighbour_pairs(queries, 5, base[:0])) == 0
    assert len(neighbour_pairs(queries[:0], 5, base)) == 0


def test_neighbour_search_in_blocks_keeps_every_admitted_pair(monkeypatch):
    """Searched a block at a time, with the admission test applied per block, the pairs are
    those of one search of every row, admitted afterwards: the blocks change memory, not
    results (the exact and the graph index both)."""
    rows = unit_rows(3000, 24, seed=1)
    admit = lambda pairs: (pairs.sum(axis=1) % 3) == 0  # noqa: E731
    for exact_up_to in (20_000, 100):
        monkeypatch.setattr(neighbours, "EXACT_UP_TO", exact_up_to)
        whole = neighbour_pairs(rows, 8)
        monkeypatch.setattr(neighbours, "QUERY_BLOCK", 256)
        blocked = neighbour_pairs(rows, 8, admit=admit)
        monkeypatch.setattr(neighbours, "QUERY_BLOCK", 16_384)
        np.testing.assert_array_equal(blocked, whole[admit(whole)])


def test_query_blocks_are_cut_at_faiss_tiles_with_no_short_last_block():
    assert neighbours.query_blocks(10) == [(0, 10)]
    assert neighbours.query_blocks(16_384 + 100) == [(0, 16_484)]
    assert neighbours.query_blocks(40_000) == [(0, 16_384), (16_384, 32_768), (32_768, 40_000)]


def test_graph_index_past_the_exact_size_finds_planted_copies_and_repeats(monkeypatch):
    monkeypatch.setattr(neighbours, "EXACT_UP_TO", 100)
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(4000, 32)).astype(np.float32)
    sources = rng.choice(3800, 200, replace=False)
    rows[3800:] = rows[sources] + rng.normal(0, 0.05, (200, 32))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    found = neighbour_pairs(rows, 4)
    planted = {(int(s), 3800 + k) for k, s in enumerate(sources)}
    assert planted <= set(map(tuple, found.tolist()))
    np.testing.assert_array_equal(found, neighbour_pairs(rows, 4))


def test_group_roots_are_the_smallest_row_of_each_connected_group():
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 300, size=(200, 2))
    expected = np.arange(300)  # each row's smallest reachable row, by propagating minima
    while True:
        low = np.minimum(expected[pairs[:, 0]], expected[pairs[:, 1]])
        spread = expected.copy()
        np.minimum.at(spread, pairs[:, 0], low)
        np.minimum.at(spread, pairs[:, 1], low)
        if np.array_equal(spread, expected):
            break
        expected = spread
    assert np.array_equal(group_roots(300, pairs), expected)
    assert np.array_equal(group_roots(3, np.empty((0, 2), dtype=np.int64)), [0, 1, 2])
    assert group_roots(0, np.empty((0, 2), dtype=np.int64)).shape == (0,)


def test_near_duplicate_search_over_chosen_rows_reads_them_in_place():
    """`rows` searches a selection without copying it: the same matches as a search of a copy."""
    rng = np.random.default_rng(5)
    images = ndimage.gaussian_filter(rng.uniform(0, 255, (300, 32, 32)), (0, 2, 2))
    images[250:] = np.roll(images[:50], 1, axis=2) + rng.normal(0, 1, (50, 32, 32))
    views, codes = view_hashes(np.clip(images, 0, 255).astype(np.uint8))
    rows = np.sort(rng.choice(300, 240, replace=False))
    chosen = find_near_duplicates(views, codes, 10, 0.975, 16, rows=rows)
    copied = find_near_duplicates(views[rows], codes[rows], 10, 0.975, 16)
    assert len(chosen.pairs) > 0 and chosen.candidates == copied.candidates
    np.testing.assert_array_equal(chosen.pairs, copied.pairs)
    np.testing.assert_array_equal(chosen.best_similarity, copied.best_similarity)
    planted = {(k, 250 + k) for k in range(50)}
    found = planted & set(
        map(tuple, find_near_duplicates(views, codes, 10, 0.975, 16).pairs.tolist())
    )
    across = find_near_duplicates(views[250:], codes[250:], 10, 0.975, 16, base=(views, codes))
    assert len(found) > 25, "most planted copies are confirmed"
    assert {(int(b), 250 + int(r)) for b, r in across.pairs} >= found, "and found across too"


def test_views_kept_on_disk_are_searched_as_views_in_memory(tmp_path):
    """With a scratch directory the views live in a nameless file, and every search reads them
    as it would read them in memory: the same matches, and nothing left in the directory."""
    rng = np.random.default_rng(6)
    images = ndimage.gaussian_filter(rng.uniform(0, 255, (200, 32, 32)), (0, 2, 2))
    images[150:] = np.roll(images[:50], 1, axis=1) + rng.normal(0, 1, (50, 32, 32))
    grey = np.clip(images, 0, 255).astype(np.uint8)
    views, codes = view_hashes(grey)
    on_disk, disk_codes = view_hashes(grey, scratch=tmp_path)
    assert isinstance(on_disk, np.memmap) and list(tmp_path.iterdir()) == []
    np.testing.assert_array_equal(on_disk, views)
    np.testing.assert_array_equal(disk_codes, codes)
    searches = [  # within one set, and between two
        ((views, codes, 10, 0.975, 16), (on_disk, codes, 10, 0.975, 16)),
        (
            (views[150:], codes[150:], 10, 0.975, 16, None, (views[:100], codes[:100])),
            (on_disk[150:], codes[150:], 10, 0.975, 16, None, (on_disk[:100], codes[:100])),
        ),
    ]
    for in_memory, from_disk in searches:
        memory, disk = find_near_duplicates(*in_memory), find_near_duplicates(*from_disk)
        assert len(memory.pairs) > 25
        np.testing.assert_array_equal(disk.pairs, memory.pairs)
        np.testing.assert_array_equal(disk.best_similarity, memory.best_similarity)
