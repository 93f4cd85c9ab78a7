"""quality, labeling and augment on tiny real data; the stage directory contract and its errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import albumentations as A
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import compose_config
from datamatters.augment import materialise as materialise_module
from datamatters.augment.materialise import augmented_copies, originals
from datamatters.data import contract
from datamatters.data.contract import (
    PixelOrigin,
    StageData,
    kept_mask,
    kept_rows,
    read_stage_data,
    write_stage_chunks,
    write_stage_data,
)
from datamatters.data.dataset import ImageArrayDataset
from datamatters.data.mapped import RowsOf, ShardedImages
from datamatters.errors import InputError
from datamatters.labeling.labels import AuditSummary, carry_labels
from datamatters.labeling.report import label_report
from datamatters.quality.assess import assess, configured_checks
from datamatters.quality.checks import LowInformation, Undecodable
from datamatters.quality.duplicates import ExactDuplicates


def tiny_pool(n: int = 12) -> StageData:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(n, 8, 8, 1), dtype=np.uint8)
    images[3] = images[1]  # exact duplicate
    images[5] = 77  # blank
    manifest = pd.DataFrame(
        {
            "id": [f"{i:07d}" for i in range(n)],
            "source": [f"test:{i}" for i in range(n)],
            "sha256": [str(hash(images[i].tobytes())) for i in range(n)],
            "label": pd.Series([str(i % 3) for i in range(n)], dtype="string"),
            "split": "train",
            "decode_error": pd.Series([None] * n, dtype="string"),
        }
    )
    manifest.loc[7, ["decode_error", "sha256"]] = ["cannot decode: test", None]
    images[7] = 0
    return StageData(images, manifest)


def resident_mib() -> float:
    """This process's resident memory."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def default_checks():
    return {
        "undecodable": Undecodable(),
        "exact_duplicates": ExactDuplicates(),
        "low_information": LowInformation(),
    }


def test_quality_flags_duplicates_blanks_and_undecodable():
    assessed, report = assess(tiny_pool(), default_checks())
    issues = dict(zip(assessed.manifest["id"], assessed.manifest["issues"], strict=True))
    assert issues["0000003"] == ["exact_duplicates"]
    assert issues["0000005"] == ["low_information"]
    assert issues["0000007"] == ["undecodable"]
    assert issues["0000001"] == [], "the first copy of a duplicate is kept"
    assert report["kept"] == 9 and report["exact_duplicates_flagged"] == 1
    assert assessed.manifest["score_low_information"].iloc[5] == 0.0


def test_flag_action_records_without_dropping():
    checks = default_checks() | {"low_information": LowInformation(action="flag")}
    assessed, _ = assess(tiny_pool(), checks)
    row = assessed.manifest.iloc[5]
    assert row["issues"] == ["low_information"] and row["keep"]


def test_undecodable_rows_are_never_kept_even_with_the_check_off():
    assessed, _ = assess(tiny_pool(), {"undecodable": Undecodable(enabled=False)})
    assert not assessed.manifest["keep"].iloc[7]


@pytest.mark.parametrize("key", ["quality", "reference.quality"])
def test_unknown_action_is_an_error_naming_the_section_that_set_it(key):
    section = OmegaConf.select(compose_config(), key)
    section.checks.low_information.action = "delete"
    named = rf"^params.yaml: {re.escape(key)}\.checks\.low_information\.action='delete'\. Fix"
    with pytest.raises(InputError, match=named):
        configured_checks(section, key)


def test_labels_are_carried_with_provenance_and_checked():
    assessed, _ = assess(tiny_pool(), default_checks())
    labeled = carry_labels(assessed, classes=None, source_path="data/quality")
    assert (labeled.manifest["given_label"] == labeled.manifest["label"]).all()
    assert set(labeled.manifest["label_source"]) == {"given"}
    assert not labeled.manifest["label_issue"].any()
    assert sum(label_report(labeled.manifest, AuditSummary())["kept_per_class"].values()) == 9
    with pytest.raises(InputError, match=r"labels not in labeling.classes: \['2'\]"):
        carry_labels(assessed, classes=["0", "1"], source_path="data/quality")


def training_set(data: StageData, pipeline, copies: int) -> StageData:
    """The training set `augment` writes, built whole in memory."""
    keep = kept_mask(data.manifest)
    chunks = list(augmented_copies(data, keep, pipeline, copies))
    images = np.concatenate([np.asarray(data.images)[keep], *(chunk.images for chunk in chunks)])
    manifests = [originals(data.manifest, keep), *(chunk.manifest for chunk in chunks)]
    return StageData(images, pd.concat(manifests, ignore_index=True))


def written_training_set(folder: Path, labeled: StageData, pipeline, copies: int) -> StageData:
    """The training set as the augment stage writes it, read back."""
    keep = kept_mask(labeled.manifest)
    kept = PixelOrigin(labeled.origin.directory, labeled.origin.rows[keep])
    chunks = augmented_copies(labeled, keep, pipeline, copies)
    shape, count = labeled.images.shape[1:], int(keep.sum()) * copies
    write_stage_chunks(folder, chunks, count, shape, (kept, originals(labeled.manifest, keep)))
    return read_stage_data(folder)


def test_the_training_set_points_at_its_originals_and_holds_only_its_copies(tmp_path):
    write_stage_data(tmp_path / "raw", tiny_pool())
    assessed, _ = assess(read_stage_data(tmp_path / "raw"), default_checks())
    write_stage_data(tmp_path / "labeled", carry_labels(assessed, None, "x"), pixels=False)
    labeled = read_stage_data(tmp_path / "labeled")
    pipeline = compose_config("augment=light").augment.pipeline
    back = written_training_set(tmp_path / "augmented", labeled, instantiate(pipeline), copies=2)
    whole = training_set(labeled, instantiate(pipeline), copies=2)
    assert isinstance(back.images, RowsOf) and len(back.images) == 27
    assert np.array_equal(np.asarray(back.images), whole.images)
    assert np.array_equal(back.images[[26, 0, 9]], whole.images[[26, 0, 9]])
    assert np.array_equal(back.images[3], whole.images[3]) and back.manifest.equals(whole.manifest)
    own = np.load(tmp_path / "augmented/images/000000.npy")
    assert np.array_equal(own, whole.images[9:]), "its own pixels are the copies alone"
    assert json.loads((tmp_path / "augmented/pixels.json").read_text()) == {"directory": "raw"}
    served = ImageArrayDataset(back.images, np.zeros(27, int))
    assert torch.equal(served[20][0], ImageArrayDataset(whole.images, np.zeros(27, int))[20][0])
    none = written_training_set(tmp_path / "plain", labeled, instantiate(pipeline), copies=0)
    assert not (tmp_path / "plain/images").exists() and len(none.images) == 9
    assert np.array_equal(np.asarray(none.images), whole.images[:9])


def test_augment_materialises_kept_rows_deterministically(monkeypatch):
    assessed, _ = assess(tiny_pool(), default_checks())
    labeled = carry_labels(assessed, None, "x")
    pipeline = compose_config("augment=light").augment.pipeline
    first, again = (training_set(labeled, instantiate(pipeline), copies=2) for _ in range(2))
    assert len(first.images) == 27 and first.manifest["augmented"].sum() == 18
    assert np.array_equal(first.images, again.images)
    assert not np.array_equal(first.images[:9], first.images[9:18]), "copies differ from originals"
    assert set(first.manifest["parent_id"]) == set(labeled.manifest["id"][labeled.manifest["keep"]])
    monkeypatch.setattr(materialise_module, "CHUNK_BYTES", 2 * labeled.images[0].nbytes)
    chunked = training_set(labeled, instantiate(pipeline), copies=2)
    assert np.array_equal(chunked.images, first.images), "chunks of 2 rows draw the same set"
    pd.testing.assert_frame_equal(chunked.manifest, first.manifest)


def test_augment_without_copies_is_the_kept_rows():
    assessed, _ = assess(tiny_pool(), default_checks())
    out = training_set(carry_labels(assessed, None, "x"), A.Compose([]), copies=0)
    assert len(out.images) == 9 and not out.manifest["augmented"].any()


def test_a_stage_written_in_chunks_is_byte_identical_and_refuses_a_wrong_count(tmp_path):
    pool = tiny_pool()
    write_stage_data(tmp_path / "whole", pool)
    halves = [pool.select(np.arange(len(pool.images)) < 5), pool.select(np.arange(12) >= 5)]
    shape = pool.images.shape[1:]
    write_stage_chunks(tmp_path / "chunked", halves, len(pool.images), shape)
    np.save(tmp_path / "saved.npy", pool.images)
    shard = tmp_path / "whole" / "images" / "000000.npy"
    assert shard.read_bytes() == (tmp_path / "saved.npy").read_bytes(), "a small set: one np.save"
    (tmp_path / "saved.npy").unlink()
    for name in ("images/000000.npy", "manifest.parquet"):
        whole, chunked = ((tmp_path / d / name).read_bytes() for d in ("whole", "chunked"))
        assert whole == chunked, name
    with pytest.raises(ValueError, match="5 rows written, 12 announced"):
        write_stage_chunks(tmp_path / "short", halves[:1], len(pool.images), shape)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked", "whole"], "nothing partial"


def test_stage_data_round_trip_and_validation(tmp_path, monkeypatch):
    """A bad input's fix names the stage that dvc.yaml says writes it."""
    monkeypatch.chdir(tmp_path)
    pool = tiny_pool()
    write_stage_data("data/raw", pool)
    back = read_stage_data("data/raw")
    assert np.array_equal(back.images, pool.images)
    assert list((tmp_path / "data").iterdir()) == [tmp_path / "data/raw"], "no temporary leftovers"
    with pytest.raises(InputError, match=r"missing columns \['keep'\].*dvc repro ingest"):
        read_stage_data("data/raw", columns=("keep",))
    with pytest.raises(InputError, match="missing. Fix: run `dvc repro quality`"):
        read_stage_data("data/quality")
    with pytest.raises(InputError, match="no stage in dvc.yaml writes it"):
        read_stage_data("elsewhere")


def test_a_deciding_stage_points_at_the_pixels_instead_of_copying_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_stage_data("data/raw", tiny_pool())
    raw = read_stage_data("data/raw")
    assessed, _ = assess(raw, default_checks())
    write_stage_data("data/quality", assessed, pixels=False)
    assert sorted(p.name for p in (tmp_path / "data/quality").iterdir()) == [
        "manifest.parquet",
        "pixels.json",
    ]
    write_stage_data("data/copied", assessed)
    back, copied = read_stage_data("data/quality"), read_stage_data("data/copied")
    assert np.array_equal(back.images, copied.images)
    assert back.manifest.equals(copied.manifest), "the row pointers stay out of the manifest"
    kept = kept_rows(back)  # a subset read back from a pointer points at the same pixels
    write_stage_data("data/labeled", kept, pixels=False)
    again = read_stage_data("data/labeled")
    assert np.array_equal(again.images, kept.images) and again.manifest.equals(kept.manifest)
    assert json.loads((tmp_path / "data/labeled/pixels.json").read_text()) == {"directory": "raw"}


def test_pointer_errors_name_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_stage_data("data/raw", tiny_pool())
    write_stage_data("data/quality", read_stage_data("data/raw"), pixels=False)
    with pytest.raises(ValueError, match="needs data read by read_stage_data"):
        write_stage_data("data/labeled", tiny_pool(), pixels=False)
    with pytest.raises(ValueError, match="must sit beside data/raw, which holds them"):
        write_stage_data("elsewhere/labeled", read_stage_data("data/raw"), pixels=False)
    (tmp_path / "data/quality/pixels.json").write_text('{"directory": "../../etc"}')
    with pytest.raises(InputError, match="points outside data"):
        read_stage_data("data/quality")
    (tmp_path / "data/quality/pixels.json").write_text('{"directory": "raw"}')
    (tmp_path / "data/raw/images/000000.npy").rename(tmp_path / "data/raw/images/000001.npy")
    with pytest.raises(InputError, match=r"raw/images: holds 000001.npy, not shards.*ingest"):
        read_stage_data("data/quality")
    shutil.rmtree(tmp_path / "data/raw/images")
    with pytest.raises(InputError, match=r"raw/images: missing.*dvc repro ingest"):
        read_stage_data("data/quality")


def test_sharded_pixels_read_back_as_one_array_in_every_way_a_stage_indexes_them(
    tmp_path, monkeypatch
):
    """Shards of 5 rows: every stage's way of reading rows sees what one array would give."""
    monkeypatch.setattr(contract, "SHARD_BYTES", 5 * 8 * 8)
    pool = tiny_pool()
    write_stage_data(tmp_path / "raw", pool)
    shards = sorted(p.name for p in (tmp_path / "raw/images").iterdir())
    assert shards == ["000000.npy", "000001.npy", "000002.npy"]
    for k, name in enumerate(shards):
        np.save(tmp_path / "one.npy", pool.images[5 * k : 5 * k + 5])
        assert (tmp_path / "raw/images" / name).read_bytes() == (tmp_path / "one.npy").read_bytes()
    halves = [pool.select(np.arange(12) < 7), pool.select(np.arange(12) >= 7)]
    write_stage_chunks(tmp_path / "chunked", halves, 12, pool.images.shape[1:])
    for name in shards:
        whole, chunked = ((tmp_path / d / "images" / name).read_bytes() for d in ("raw", "chunked"))
        assert whole == chunked, name

    images, plain = read_stage_data(tmp_path / "raw").images, pool.images
    assert isinstance(images, ShardedImages) and images.shape == plain.shape == (12, 8, 8, 1)
    mask = np.arange(12) % 3 == 1
    for key in (
        0,
        4,
        5,
        11,
        -1,
        slice(2, 4),
        slice(5, 10),
        slice(3, 12),
        slice(None, None, 2),
        slice(12, 12),
        mask,
        [11, 0, 5, 5],
        np.array([], np.int64),
        np.array([-2, 6]),
    ):
        assert np.array_equal(images[key], plain[key]), key
    assert np.array_equal(np.asarray(images), plain) and images[6].base is not None, "a view"
    for bad in (12, -13, [3, 12], np.ones(5, bool)):
        with pytest.raises(IndexError):
            images[bad]
    images.release(0, 12)
    assert np.array_equal(np.asarray(images), plain), "released pages read back the same"
    served = ImageArrayDataset(images, np.zeros(12, int), release_pages=True)
    assert torch.equal(served[7][0], ImageArrayDataset(plain, np.zeros(12, int))[7][0])

    assessed, report = assess(read_stage_data(tmp_path / "raw"), default_checks())
    once, report_once = assess(pool, default_checks())
    assert report == report_once and assessed.manifest.equals(once.manifest)
    write_stage_data(tmp_path / "quality", assessed, pixels=False)
    labeled = carry_labels(read_stage_data(tmp_path / "quality"), None, "x")
    pipeline = compose_config("augment=light").augment.pipeline
    sharded_set = training_set(labeled, instantiate(pipeline), copies=2)
    plain_set = training_set(carry_labels(once, None, "x"), instantiate(pipeline), copies=2)
    assert np.array_equal(sharded_set.images, plain_set.images)


def test_a_contract_breach_is_refused_before_anything_is_written(tmp_path):
    pool = tiny_pool()
    write_stage_data(tmp_path / "out", pool)
    broken = StageData(pool.images[:3], pool.manifest)
    with pytest.raises(ValueError, match="3 images but 12 manifest rows"):
        write_stage_data(tmp_path / "out", broken)
    assert len(read_stage_data(tmp_path / "out").images) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_write_that_fails_midway_is_rolled_back(tmp_path):
    """The pixels are written, then the manifest cannot be (a column parquet cannot hold): the
    half-written directory is removed and the previous output stays, whole."""
    pool = tiny_pool()
    write_stage_data(tmp_path / "out", pool)
    fresh = StageData(pool.images[::-1].copy(), pool.manifest.assign(note=[object()] * 12))
    with pytest.raises(pa.ArrowInvalid, match="Conversion failed for column note"):
        write_stage_data(tmp_path / "out", fresh)
    kept = read_stage_data(tmp_path / "out")
    assert np.array_equal(kept.images, pool.images) and "note" not in kept.manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_released_rows_leave_resident_memory_and_read_back_the_same(tmp_path):
    """Streaming once through memory-mapped pixels must not keep them all resident."""
    from datamatters.data.mapped import release_rows

    pixels = np.random.default_rng(0).integers(0, 256, (2000, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", pixels)  # 23 MiB
    mapped = np.asarray(np.load(tmp_path / "images.npy", mmap_mode="r"))
    total = int(mapped.sum(dtype=np.int64))
    read = resident_mib()
    for start in range(0, len(mapped), 500):
        release_rows(mapped, start, start + 500)
    assert read - resident_mib() > 15, "the read pages left this process"
    assert int(mapped.sum(dtype=np.int64)) == total and np.array_equal(mapped, pixels)
    release_rows(pixels, 0, 10)  # ordinary memory: nothing to release, nothing breaks


def test_gathering_scattered_rows_does_not_keep_the_map_resident(tmp_path):
    """Scattered reads of a map fault in the rows' neighbours too; a gather releases them."""
    from datamatters.data.mapped import gather, release_rows

    pixels = np.random.default_rng(2).integers(0, 256, (4000, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", pixels)  # 47 MiB
    mapped = np.asarray(np.load(tmp_path / "images.npy", mmap_mode="r"))
    rows = np.random.default_rng(3).choice(len(pixels), 400, replace=False)
    before = resident_mib()
    gathered = gather(mapped, rows)
    assert resident_mib() - before < 16, "no more than the gathered rows stay resident"
    assert np.array_equal(gathered, pixels[rows])
    mask = np.arange(len(pixels)) % 7 == 3
    assert np.array_equal(gather(mapped, mask), pixels[mask])
    assert np.array_equal(gather(pixels, rows), pixels[rows]), "ordinary memory: a plain index"
    release_rows(mapped, 0, len(mapped))


def test_a_loader_reading_one_row_at_a_time_keeps_no_shard_resident(tmp_path):
    """The judge's and the audit's loaders read shuffled rows from disk: each read maps the
    readahead around the row, and the release after it drops the row's whole shard."""
    import os

    from datamatters.data.mapped import ShardedImages

    rng = np.random.default_rng(4)
    paths = []
    for number in range(4):  # 4 shards of 16 MiB
        paths.append(tmp_path / f"{number}.npy")
        np.save(paths[-1], rng.integers(0, 256, (1365, 64, 64, 3), dtype=np.uint8))
        with paths[-1].open("rb+") as handle:  # from disk, as a later stage reads it
            os.fsync(handle.fileno())
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    images = ShardedImages([np.load(path, mmap_mode="r") for path in paths])
    served = ImageArrayDataset(images, np.zeros(len(images), int), release_pages=True)
    before = resident_mib()
    total = sum(float(served[int(row)][0].sum()) for row in rng.permutation(len(images))[:2000])
    assert resident_mib() - before < 4, "2,000 rows read, 23 MiB of them, none left resident"
    assert total > 0


def test_a_selection_points_at_its_rows_and_reads_them_only_when_asked(tmp_path):
    """`select` gathers nothing: the judge's and the reference features' sets stay on disk."""
    pool = tiny_pool()
    mask = np.arange(12) % 3 != 0
    chosen = pool.select(mask)
    assert isinstance(chosen.images, RowsOf) and chosen.images.shape == (8, 8, 8, 1)
    assert np.array_equal(np.asarray(chosen.images), pool.images[mask])
    again = chosen.select(np.arange(8) % 2 == 0)
    assert again.images.images is pool.images, "a selection of a selection: one lookup"
    assert np.array_equal(again.images[1], pool.images[np.flatnonzero(mask)[2]])
    assert np.array_equal(again.images[0:3], pool.images[mask][::2][0:3])

    pixels = np.random.default_rng(4).integers(0, 256, (4000, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", pixels)  # 47 MiB
    mapped = np.asarray(np.load(tmp_path / "images.npy", mmap_mode="r"))
    big = StageData(mapped, pd.DataFrame({"id": [f"{i:07d}" for i in range(4000)]}))
    before = resident_mib()
    half = big.select(np.arange(4000) % 2 == 0)
    assert resident_mib() - before < 4, "no pixels read (gathered, half would be 23 MiB)"
    assert np.array_equal(half.images[[0, 1999]], pixels[[0, 3998]])


def test_a_scratch_array_lives_on_disk_and_leaves_nothing_behind(tmp_path):
    """Ingest's decoded pixels: written, released, read back, and gone with the process's file."""
    from datamatters.data.mapped import release_rows, scratch_array

    pixels = np.random.default_rng(1).integers(0, 256, (2000, 64, 64, 3), dtype=np.uint8)
    before = resident_mib()
    scratch = scratch_array(pixels.shape, tmp_path)
    assert list(tmp_path.iterdir()) == [], "the file has no name"
    for start in range(0, len(pixels), 500):
        scratch[start : start + 500] = pixels[start : start + 500]
        release_rows(scratch, start, start + 500)
    assert resident_mib() - before < 8, "written pages did not stay resident"
    halves = scratch[:700], scratch[700:]
    release_rows(halves[1], 0, 100)  # a view's offset into the file is respected
    assert np.array_equal(halves[1], pixels[700:]) and np.array_equal(halves[0], pixels[:700])
    assert scratch_array((0, 8, 8, 1), tmp_path).shape == (0, 8, 8, 1)


def test_a_stage_sweeps_away_what_killed_writers_left(tmp_path):
    """A temporary whose writer is gone is removed; a running writer's is left alone."""
    import os
    import subprocess
    import sys

    from datamatters.atomic import remove_abandoned

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    (tmp_path / f".raw.{gone}.abc123.tmp" / "raw").mkdir(parents=True)
    (tmp_path / f".raw.{os.getpid()}.def456.tmp").mkdir()
    (tmp_path / "raw").mkdir()
    remove_abandoned(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".raw.{os.getpid()}.def456.tmp", "raw"]


def test_an_output_that_does_not_fit_names_its_path_and_keeps_the_previous_one(tmp_path):
    """A write that runs out of space (ENOSPC, as a full disk raises it) becomes the one error a
    user reads, naming the output and the fix; the previous output stays whole, no temporary
    stays behind. (tests/test_sharing.py fills a real small filesystem.)"""
    import errno

    from datamatters.atomic import atomic_path

    target = tmp_path / "raw.json"
    target.write_text("previous")
    with pytest.raises(InputError) as raised, atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert str(target) in str(raised.value) and "no space left" in str(raised.value)
    assert "df -h" in raised.value.fix and "dvc repro" in raised.value.fix
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.json"]
