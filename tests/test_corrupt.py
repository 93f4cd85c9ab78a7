"""Injected corruption is real, visible, recorded exactly, and reproducible."""

from __future__ import annotations

import socket

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from datamatters.data import corrupt
from datamatters.data.contract import StageData, pixel_sha256
from datamatters.data.corrupt import ADDED, KINDS, MIXED_KINDS, inject
from datamatters.data.ingest import ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.data.sources import ArrayImage, ImageFile, SourceItem

ALL = dict.fromkeys(KINDS, 0.05)


@pytest.fixture(scope="module")
def mnist() -> StageData:
    return ingest(list(Mnist5kSource().items()), 32, 1, 0.2, 0, limit=400).train


@pytest.fixture(scope="module")
def rgb() -> StageData:
    """16×16 RGB: three classes, some unlabeled rows and one undecodable file."""
    rng = np.random.default_rng(1)
    items = []
    for i in range(40):
        small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize((20, 24), Image.Resampling.BICUBIC)
        label = None if i % 8 == 7 else ["cat", "dog", "owl"][i % 3]
        items.append(SourceItem(f"rgb:{i}", label, ArrayImage(np.asarray(picture))))
    items.append(SourceItem("rgb:broken", "cat", ImageFile("/nonexistent.png")))
    return ingest(items, 16, 3, 0.01, 0).train


def rows_of(out: StageData, kind: str) -> np.ndarray:
    return np.flatnonzero(out.manifest["injected"].eq(kind).fillna(False).to_numpy())


def original_of(pool: StageData, out: StageData, row: int) -> int:
    original_id = out.manifest["source"][row].split(":of=")[1]
    return int(np.flatnonzero(pool.manifest["id"].eq(original_id).to_numpy())[0])


def laplacian_var(image: np.ndarray) -> float:
    return float(cv2.Laplacian(image.astype(np.float64), cv2.CV_64F).var())


def low_freq(image: np.ndarray) -> np.ndarray:
    """An 8×8 blurred thumbnail: what a perceptual hash compares."""
    blurred = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.5)
    return cv2.resize(blurred, (8, 8), interpolation=cv2.INTER_AREA).ravel()


def high_freq(image: np.ndarray) -> float:
    grey = image.astype(np.float64).mean(-1)
    return float(np.mean(np.diff(grey, axis=0) ** 2) + np.mean(np.diff(grey, axis=1) ** 2))


def test_mixed_is_shared_evenly_by_every_kind_but_unlabeled_and_adds_to_their_own(mnist):
    clean = int(mnist.manifest["decode_error"].isna().sum())
    _, counts = inject(mnist, {"mixed": 0.22, "blur": 0.05, "unlabeled": 0.05}, seed=0)
    share = 0.22 / len(MIXED_KINDS)
    assert "unlabeled" not in MIXED_KINDS and len(MIXED_KINDS) == len(KINDS) - 1
    assert counts["blur"] == round((0.05 + share) * clean)
    assert counts["unlabeled"] == round(0.05 * clean)
    assert all(counts[kind] == round(share * clean) for kind in MIXED_KINDS if kind != "blur")


@pytest.mark.parametrize("pool_name", ["mnist", "rgb"])
def test_counts_shapes_and_columns(pool_name, request):
    pool = request.getfixturevalue(pool_name)
    out, counts = inject(pool, ALL, seed=0)
    clean = int(pool.manifest["decode_error"].isna().sum())
    assert counts == {kind: round(0.05 * clean) for kind in KINDS}
    assert out.manifest["injected"].value_counts().to_dict() == {
        k: n for k, n in counts.items() if n
    }
    added = sum(counts[kind] for kind in ADDED)
    assert out.images.shape == (len(pool.images) + added, *pool.images.shape[1:])
    assert out.images.dtype == np.uint8 and len(out.manifest) == len(out.images)
    assert list(out.manifest.columns) == [*pool.manifest.columns, "injected", "clean_label"]
    for column in ("label", "decode_error", "injected", "clean_label"):
        assert out.manifest[column].dtype == "string"
    assert out.manifest["id"].is_unique and set(out.manifest["split"]) == {"train"}


def test_injected_marks_exactly_the_changed_and_added_rows(rgb):
    out, _ = inject(rgb, dict.fromkeys(KINDS, 0.1), seed=3)
    n, before, after = len(rgb.images), rgb.manifest, out.manifest.iloc[: len(rgb.images)]
    changed = (out.images[:n] != rgb.images).reshape(n, -1).any(1)
    for column in ("label", "width", "height", "decode_error", "sha256"):
        changed |= ~(before[column].fillna("-") == after[column].fillna("-")).to_numpy()
    assert (changed == after["injected"].notna().to_numpy()).all()
    assert after["decode_error"].notna().sum() == 1 + (after["injected"] == "undecodable").sum()
    extra = out.manifest.iloc[n:]
    assert extra["injected"].notna().all()
    assert all(
        i == f"inj-{kind}-{k:05d}"
        for i, kind, k in zip(
            extra["id"], extra["injected"], extra.groupby("injected").cumcount(), strict=True
        )
    )
    assert (extra["sha256"] == [pixel_sha256(image) for image in out.images[n:]]).all()


def test_added_kinds_leave_every_original_untouched(mnist):
    out, counts = inject(mnist, dict.fromkeys(ADDED, 0.1), seed=0)
    n = len(mnist.images)
    assert np.array_equal(out.images[:n], mnist.images)
    assert out.manifest.iloc[:n][mnist.manifest.columns].equals(mnist.manifest)
    assert out.manifest["injected"].iloc[:n].isna().all() and len(out.images) == n + sum(
        counts.values()
    )


def test_duplicates_exact_and_near(mnist):
    out, _ = inject(mnist, {"exact_duplicate": 0.05, "near_duplicate": 0.05}, seed=0)
    m = out.manifest
    for row in rows_of(out, "exact_duplicate"):
        original = original_of(mnist, out, row)
        assert np.array_equal(out.images[row], mnist.images[original])
        assert m["sha256"][row] == mnist.manifest["sha256"][original]
        assert m["label"][row] == mnist.manifest["label"][original]
    known = set(mnist.manifest["sha256"])
    coarse = np.stack([low_freq(image) for image in mnist.images])
    found = 0
    for row in rows_of(out, "near_duplicate"):
        original = original_of(mnist, out, row)
        assert m["sha256"][row] not in known
        near = low_freq(out.images[row])
        assert np.corrcoef(near, coarse[original])[0, 1] > 0.6  # the same picture, coarsely
        found += np.argmin(((coarse - near) ** 2).sum(1)) == original
        assert m["label"][row] == mnist.manifest["label"][original]
        assert (m["width"][row], m["height"][row]) == (32, 32)
    assert found >= 0.6 * len(rows_of(out, "near_duplicate"))  # a coarse hash finds most


def test_pixel_kinds_move_the_signals_quality_checks_use(mnist):
    kinds = ("blur", "noise", "dark", "light", "low_information")
    out, _ = inject(mnist, dict.fromkeys(kinds, 0.08), seed=0)
    new, old = out.images, mnist.images
    for row in rows_of(out, "blur"):
        assert laplacian_var(new[row]) < 0.5 * laplacian_var(old[row])
    for row in rows_of(out, "noise"):
        assert high_freq(new[row]) > high_freq(old[row]) + 1000
    for row in rows_of(out, "dark"):
        assert new[row].mean() < 0.35 * old[row].mean()
    for row in rows_of(out, "light"):
        assert new[row].std() < 0.5 * old[row].std() and new[row].mean() > 150
    for row in rows_of(out, "low_information"):
        assert new[row].std() < 1
    assert all(len(rows_of(out, kind)) == round(0.08 * len(old)) for kind in kinds)


def test_odd_size_records_an_extreme_aspect(mnist):
    out, _ = inject(mnist, {"odd_size": 0.1}, seed=0)
    rows = rows_of(out, "odd_size")
    width, height = out.manifest["width"][rows], out.manifest["height"][rows]
    assert (np.maximum(width, height) / np.minimum(width, height) >= 4).all()
    assert all(not np.array_equal(out.images[row], mnist.images[row]) for row in rows)


def test_undecodable_rows_carry_the_real_decoder_reason(mnist):
    out, _ = inject(mnist, {"undecodable": 0.05}, seed=0)
    rows = rows_of(out, "undecodable")
    reasons = out.manifest["decode_error"][rows]
    assert reasons.str.startswith("cannot decode:").all()
    assert not out.images[rows].any()
    assert out.manifest["sha256"][rows].isna().all()


def test_label_flips_go_to_another_class_and_skip_unlabeled_rows(rgb):
    labeled = int((rgb.manifest["label"].notna() & rgb.manifest["decode_error"].isna()).sum())
    clean = int(rgb.manifest["decode_error"].isna().sum())
    out, counts = inject(rgb, {"label_flip": labeled / clean}, seed=0)
    flipped = out.manifest.iloc[rows_of(out, "label_flip")]
    assert counts["label_flip"] == len(flipped) == labeled
    assert (flipped["label"] != flipped["clean_label"]).all()
    assert flipped["clean_label"].notna().all() and set(flipped["label"]) <= {"cat", "dog", "owl"}
    assert np.array_equal(out.images, rgb.images)
    untouched = out.manifest["injected"].isna()
    assert (
        out.manifest["label"][untouched].fillna("-")
        == out.manifest["clean_label"][untouched].fillna("-")
    ).all()


def test_removed_labels_keep_their_truth_and_pixels(rgb):
    out, counts = inject(rgb, {"unlabeled": 0.25, "label_flip": 0.25}, seed=0)
    removed = out.manifest.iloc[rows_of(out, "unlabeled")]
    assert counts["unlabeled"] == len(removed) > 0
    assert removed["label"].isna().all() and removed["clean_label"].notna().all()
    assert not set(removed.index) & set(rows_of(out, "label_flip"))
    assert np.array_equal(out.images, rgb.images)


def test_off_domain_is_a_natural_crop_with_a_real_label(rgb):
    out, counts = inject(rgb, {"off_domain": 0.2}, seed=0)
    rows = out.manifest.iloc[rows_of(out, "off_domain")]
    assert len(rows) == counts["off_domain"] == 8
    assert rows["source"].str.startswith("injected:off_domain:skimage.").all()
    assert set(rows["label"]) <= {"cat", "dog", "owl"}
    assert out.images.shape[1:] == (16, 16, 3)


def test_deterministic_per_seed(mnist):
    first, _ = inject(mnist, ALL, seed=7)
    second, _ = inject(mnist, ALL, seed=7)
    other, _ = inject(mnist, ALL, seed=8)
    assert np.array_equal(first.images, second.images)
    assert first.manifest.equals(second.manifest)
    assert not np.array_equal(first.images, other.images)


def test_one_kinds_fraction_does_not_move_another_kinds_rows(mnist):
    base, _ = inject(mnist, {"blur": 0.05, "exact_duplicate": 0.05}, seed=0)
    more, _ = inject(mnist, {"blur": 0.05, "exact_duplicate": 0.05, "noise": 0.2}, seed=0)
    blurred = [run.manifest["id"][rows_of(run, "blur")].tolist() for run in (base, more)]
    assert blurred[0] == blurred[1]  # blur picks before noise, so noise cannot take its rows
    noised = set(more.manifest["id"][rows_of(more, "noise")])
    copied = [set(run.manifest["source"][rows_of(run, "exact_duplicate")]) for run in (base, more)]
    still_free = {s for s in copied[0] if s.split("=")[1] not in noised}
    assert still_free <= copied[1] and len(still_free) < len(copied[0])  # moved only on collision


@pytest.mark.parametrize(
    ("fractions", "key"),
    [
        ({"smudge": 0.1}, "ingest.corrupt.smudge"),
        ({"blur": -0.1}, "ingest.corrupt.blur"),
        ({"noise": 1.5}, "ingest.corrupt.noise"),
        ({"dark": "lots"}, "ingest.corrupt.dark"),
        ({"blur": 0.6, "noise": 0.6}, "ingest.corrupt.blur + ingest.corrupt.noise"),
    ],
)
def test_bad_fractions_name_the_key(mnist, fractions, key):
    with pytest.raises(ValueError, match=key.replace("+", r"\+")):
        inject(mnist, fractions, seed=0)


def test_flipping_more_than_the_labeled_rows_is_refused(rgb):
    with pytest.raises(ValueError, match="ingest.corrupt.label_flip"):
        inject(rgb, {"label_flip": 1.0}, seed=0)


def test_input_is_not_mutated(rgb):
    images, manifest = rgb.images.copy(), rgb.manifest.copy()
    inject(rgb, dict.fromkeys(KINDS, 0.08), seed=0)
    assert np.array_equal(rgb.images, images) and rgb.manifest.equals(manifest)


def test_natural_images_load_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    corrupt._natural_image.cache_clear()
    corrupt._natural_images.cache_clear()
    assert corrupt._natural_images() == corrupt.OFF_DOMAIN_IMAGES
    for name in corrupt.OFF_DOMAIN_IMAGES:
        assert min(corrupt._natural_image(name).shape[:2]) >= 128


def test_thousands_of_images_get_every_kind_in_proportion(mnist):
    """At ten times the size every kind gets its share; how fast is measured in benchmarks, not
    asserted here."""
    big = StageData(
        np.concatenate([mnist.images] * 10),
        pd.concat([mnist.manifest] * 10, ignore_index=True),
    )
    out, counts = inject(big, ALL, seed=0)
    clean = int(big.manifest["decode_error"].isna().sum())
    assert counts == dict.fromkeys(KINDS, round(0.05 * clean))
    assert out.manifest["injected"].value_counts().to_dict() == counts
    assert len(out.images) == len(big.images) + sum(counts[kind] for kind in ADDED)


def test_no_fractions_only_adds_the_ground_truth_columns(rgb):
    out, counts = inject(rgb, {"blur": 0, "noise": 0.0}, seed=0)
    assert not any(counts.values()) and np.array_equal(out.images, rgb.images)
    assert out.manifest["injected"].isna().all()
    assert out.manifest["clean_label"].fillna("-").equals(rgb.manifest["label"].fillna("-"))


def test_duplicates_need_an_untouched_row(rgb):
    inject(rgb, {"blur": 1.0}, seed=0)  # every clean row changed in place is fine
    with pytest.raises(ValueError, match="ingest.corrupt.exact_duplicate"):
        inject(rgb, {"blur": 1.0, "exact_duplicate": 0.1}, seed=0)
