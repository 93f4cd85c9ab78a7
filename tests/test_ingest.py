"""Ingest decodes real files, records what it cannot use, splits deterministically."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import run_stage_script, write_image
from datamatters.config import write_params
from datamatters.data.contract import read_stage_data
from datamatters.data.ingest import REFERENCE, TRAIN, ingest
from datamatters.data.mnist5k import Mnist5kSource
from datamatters.data.sources import FolderSource, ManifestSource
from datamatters.errors import InputError

CONF = Path(__file__).resolve().parents[1] / "conf"


def folder_ingest(root: Path, **kwargs):
    args = {"image_size": 16, "channels": 3, "reference_fraction": 0.25, "seed": 0} | kwargs
    return ingest(list(FolderSource(str(root)).items()), **args)


def test_mnist5k_is_real_balanced_and_offline():
    items = list(Mnist5kSource().items())
    assert len(items) == 5000
    assert {item.label for item in items} == {str(d) for d in range(10)}
    assert items[0].source == "mnist5k:0"


def test_limit_keeps_every_class():
    result = ingest(list(Mnist5kSource().items()), 32, 1, 0.2, 0, limit=100)
    manifest = result.train.manifest
    assert len(manifest) + len(result.reference.manifest) == 100
    assert manifest["label"].nunique() == 10
    assert result.train.images.shape[1:] == (32, 32, 1)


def test_split_is_deterministic_and_disjoint(image_folder):
    first, second = folder_ingest(image_folder), folder_ingest(image_folder)
    assert first.train.manifest.equals(second.train.manifest)
    assert set(first.train.manifest["split"]) == {TRAIN}
    assert set(first.reference.manifest["split"]) == {REFERENCE}
    assert not set(first.train.manifest["sha256"]) & set(first.reference.manifest["sha256"])
    assert len(first.reference.manifest) > 0


def test_identical_images_land_in_the_same_split(image_folder):
    copy = image_folder / "cat" / "copy.png"
    copy.write_bytes((image_folder / "cat" / "01.png").read_bytes())
    result = folder_ingest(image_folder, reference_fraction=0.5)
    both = [
        r
        for r in (result.train, result.reference)
        if (r.manifest["source"].str.endswith("cat/01.png")).any()
    ]
    assert (both[0].manifest["source"].str.endswith("cat/copy.png")).any()


def test_corrupt_file_among_good_ones_gets_a_reason_row(image_folder):
    (image_folder / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    result = folder_ingest(image_folder)
    rows = pd.concat([result.train.manifest, result.reference.manifest])
    broken = rows[rows["source"].str.endswith("broken.png")]
    assert len(broken) == 1 and "cannot decode" in broken["decode_error"].iloc[0]
    assert broken["label"].iloc[0] == "dog" and broken["sha256"].isna().all()
    assert rows["decode_error"].isna().sum() == 24


def test_truncated_png_does_not_crash(image_folder):
    path = image_folder / "owl" / "00.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rows = folder_ingest(image_folder).train.manifest
    assert rows.loc[rows["source"] == str(path), "decode_error"].notna().all()


def test_modes_are_normalised(tmp_path):
    root = tmp_path / "modes"
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    write_image(root / "a" / "rgba.png", rgba)
    write_image(root / "a" / "grey.png", np.full((12, 8), 90, dtype=np.uint8))
    write_image(
        root / "b" / "wide16.png", (np.arange(64 * 4, dtype=np.uint16).reshape(16, 16) * 256)
    )
    result = ingest(list(FolderSource(str(root)).items()), 8, 1, 0.01, 0)
    rows = result.train.manifest
    assert rows["decode_error"].isna().all()
    assert result.train.images.shape == (3, 8, 8, 1)
    assert sorted(rows["mode"]) == ["I;16", "L", "RGBA"]


def test_folder_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(FolderSource(str(tmp_path / "nowhere")).items())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        list(FolderSource(str(tmp_path / "empty")).items())
    with pytest.raises(InputError, match="data.path is not set"):
        list(FolderSource(None).items())


def _ingest_cli(tmp_path: Path, *overrides: str):
    write_params(tmp_path / "params.yaml", overrides, CONF)
    return run_stage_script(
        "ingest",
        ["--train-out", "raw", "--reference-out", "ref", "--real-sample-out", "real"]
        + ["--metrics", "ingest.json"],
        tmp_path,
    )


@pytest.mark.parametrize(
    "make, problem, fix",
    [
        (
            lambda p: p / "missing",
            "folder does not exist",
            "Fix: run with -S data=folder -S data.path=",
        ),
        (
            lambda p: (p / "empty").mkdir() or p / "empty",
            "contains no image files",
            "Fix: put images in one sub-folder per class",
        ),
    ],
)
def test_bad_folder_message_names_stage_path_and_fix(tmp_path, make, problem, fix):
    folder = make(tmp_path)
    result = _ingest_cli(tmp_path, "data=folder", f"data.path={folder}")
    assert result.returncode == 2
    assert f"error: [ingest] {folder}: {problem}" in result.stderr
    assert fix in result.stderr
    assert not (tmp_path / "raw").exists(), "a failed stage must leave no output"


def test_non_image_file_is_reported_and_recorded(tmp_path, image_folder):
    notes = image_folder / "cat" / "notes.txt"
    notes.write_text("not an image")
    result = _ingest_cli(tmp_path, "data=folder", f"data.path={image_folder}", "data.image_size=16")
    assert result.returncode == 0, result.stderr
    assert f"[ingest] {notes}: not an image file type (.txt)" in result.stdout
    assert "remove or replace the file" in result.stdout
    assert "25 images" in result.stdout and "1 undecodable" in result.stdout


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims `width`×`height` pixels, as a decompression bomb does."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    data = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
    return path


def _save(path: Path, image: Image.Image, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


def test_unusual_modes_become_the_pipeline_mode_and_bombs_a_reason(tmp_path):
    """16-bit, CMYK, RGBA, palette (with and without transparency), and a decompression bomb."""
    root = tmp_path / "odd"
    _save(root / "a" / "deep16.png", Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)))
    _save(root / "a" / "cmyk.jpg", Image.new("CMYK", (8, 8), (0, 0, 0, 0)), quality=100)
    half_red = np.zeros((8, 8, 4), dtype=np.uint8)
    half_red[..., 0], half_red[..., 3] = 255, 128
    _save(root / "a" / "rgba.png", Image.fromarray(half_red))
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    _save(root / "b" / "palette.png", palette)
    _save(root / "b" / "palette_clear.png", palette, transparency=1)
    bomb = _png_claiming(root / "b" / "bomb.png", 20_000, 20_000)
    assert Image.MAX_IMAGE_PIXELS is not None  # the guard is on

    rows = ingest(list(FolderSource(str(root)).items()), 8, 3, 1e-9, 0).train  # all in train
    names = rows.manifest["source"].map(lambda source: Path(source).name)
    manifest = rows.manifest.set_index(names)

    def pixel(name: str) -> list[int]:
        return rows.images[names.tolist().index(name)][4, 4].tolist()

    assert manifest.loc[["deep16.png", "cmyk.jpg", "rgba.png", "palette.png"], "mode"].tolist() == [
        "I;16",
        "CMYK",
        "RGBA",
        "P",
    ]
    assert pixel("deep16.png") == [255, 255, 255]  # full scale of 16 bits -> full scale of 8
    assert min(pixel("cmyk.jpg")) >= 250  # no ink is white
    assert pixel("rgba.png")[0] in (127, 128) and pixel("rgba.png")[1:] == [0, 0]  # over black
    assert pixel("palette.png") == [255, 255, 255]
    assert pixel("palette_clear.png") == [0, 0, 0]  # the transparent entry, over black
    assert "decompression bomb" in manifest.loc[bomb.name, "decode_error"]
    assert manifest["decode_error"].notna().sum() == 1


def _manifest_folder(root: Path, image_folder: Path, lines: list[str]) -> Path:
    """`root` holding the fixture's images and a labels.csv with `lines` (path,label)."""
    shutil.copytree(image_folder, root)
    (root / "labels.csv").write_text("path,label\n" + "\n".join(lines) + "\n")
    return root


def test_manifest_lines_that_cannot_be_used_get_a_row_with_their_reason(tmp_path, image_folder):
    (tmp_path / "outside.png").write_bytes((image_folder / "cat" / "01.png").read_bytes())
    root = _manifest_folder(
        tmp_path / "set",
        image_folder,
        [
            "cat/01.png,cat",
            "dog/03.png,dog",
            "owl/05.png,",  # no label: an unlabeled row
            "../outside.png,cat",
            "/etc/passwd,cat",
            "cat/missing.png,cat",
            "./cat/01.png,cat",
            "dog/05.png,horse",
        ],
    )
    source = ManifestSource(str(root), "labels.csv", classes=["cat", "dog", "owl"])
    result = ingest(list(source.items()), 16, 3, 0.5, 0)
    rows = pd.concat([result.train.manifest, result.reference.manifest]).sort_values("id")
    reasons = rows["decode_error"].fillna("").tolist()
    assert len(rows) == 8, "every line is a row"
    assert reasons[:3] == ["", "", ""]
    assert rows["label"].iloc[2] is pd.NA
    assert "escapes the manifest's folder" in reasons[3] and "escapes" in reasons[4]
    assert "file not found" in reasons[5]
    assert "listed twice in labels.csv (first on line 2)" in reasons[6]
    assert "label 'horse' is not one of data.classes" in reasons[7]
    assert rows["source"].iloc[3].endswith("labels.csv:5:../outside.png")


def test_manifest_errors_name_the_fix(tmp_path, image_folder):
    root = _manifest_folder(tmp_path / "set", image_folder, ["../x.png,cat", "nope.png,cat"])
    with pytest.raises(InputError, match=r"none of the 2 items is a usable image .*Fix: fix"):
        ingest(list(ManifestSource(str(root), "labels.csv").items()), 16, 3, 0.5, 0)
    with pytest.raises(InputError, match="manifest not found"):
        list(ManifestSource(str(root), "other.csv").items())
    (root / "bad.csv").write_text("file,label\ncat/01.png,cat\n")
    with pytest.raises(InputError, match="no column 'path' .*data.source.path_column"):
        list(ManifestSource(str(root), "bad.csv").items())


def test_manifest_source_reads_parquet(tmp_path, image_folder):
    root = _manifest_folder(tmp_path / "set", image_folder, [])
    pd.DataFrame({"path": ["cat/01.png", "dog/02.jpg"], "label": ["cat", "dog"]}).to_parquet(
        root / "labels.parquet"
    )
    items = list(ManifestSource(str(root), "labels.parquet").items())
    assert [item.label for item in items] == ["cat", "dog"]


def test_bad_files_get_rows_on_both_sides_and_the_reference_checks_drop_them(tmp_path):
    """The bad-file corpus: unusual modes, a bomb, truncated and foreign files, split 50/50."""
    from conftest import compose_config
    from datamatters.quality.assess import assess, configured_checks

    root = tmp_path / "bad"
    rng = np.random.default_rng(0)
    for i in range(12):
        write_image(root / "a" / f"ok{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        _png_claiming(root / "b" / f"bomb{i}.png", 20_000, 20_000)
        (root / "b" / f"cut{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(i))
        (root / "a" / f"notes{i}.txt").write_text("not an image")
    result = ingest(list(FolderSource(str(root)).items()), 8, 3, 0.5, 0)
    sides = {side: data.manifest for side, data in vars(result).items()}
    assert sum(len(rows) for rows in sides.values()) == 48, "every file is a row"
    for side, rows in sides.items():
        assert rows["decode_error"].notna().any(), f"no bad file landed in {side}"
    reference = result.reference
    checked, _ = assess(
        reference, configured_checks(compose_config().reference.quality, "reference.quality")
    )
    bad = reference.manifest["decode_error"].notna().to_numpy()
    assert not checked.manifest["keep"][bad].any()
    assert all("undecodable" in issues for issues in checked.manifest["issues"][bad])


def test_the_real_sample_is_the_same_bytes_whatever_corruption_is_injected(tmp_path, image_folder):
    """The real-data floor is measured on it, so no data knob of an experiment may move it, and
    DVC then sees an unchanged input and skips the `real_floor` stage."""
    sizes = ("data=folder", f"data.path={image_folder}", "data.image_size=16")
    hashes = []
    for mixed in (0.0, 0.5):
        run = tmp_path / f"mixed-{mixed}"
        run.mkdir()
        result = _ingest_cli(run, *sizes, f"ingest.corrupt.mixed={mixed}", "ingest.real_sample=6")
        assert result.returncode == 0, result.stderr
        real = read_stage_data(run / "real")
        assert len(real.images) == 6 and real.manifest["split"].eq("train").all()
        hashes.append(
            [
                (run / "real" / name).read_bytes()
                for name in ("images/000000.npy", "manifest.parquet")
            ]
        )
    assert hashes[0] == hashes[1]
    raw = [read_stage_data(tmp_path / f"mixed-{m}" / "raw").images for m in (0.0, 0.5)]
    assert len(raw[0]) != len(raw[1]) or not (raw[0] == raw[1]).all(), (
        "corruption did change the pool"
    )


def test_rows_partitioned_in_place_match_a_fancy_index(tmp_path, monkeypatch):
    """Train rows first, then reference rows, each in order: in memory and on disk, in chunks."""
    from datamatters.data import ingest as ingest_module
    from datamatters.data.mapped import scratch_array

    monkeypatch.setattr(ingest_module, "RELEASE_BYTES", 5 * 9)  # chunks of 5 rows
    rng = np.random.default_rng(0)
    for n, scratch in ((0, None), (1, None), (2, tmp_path), (7, None), (300, tmp_path)):
        pixels = rng.integers(0, 256, size=(n, 3, 3, 1), dtype=np.uint8)
        is_reference = rng.random(n) < 0.3
        order = np.concatenate([np.flatnonzero(~is_reference), np.flatnonzero(is_reference)])
        rows = pixels.copy() if scratch is None else scratch_array(pixels.shape, scratch)
        rows[:] = pixels
        ingest_module._partition_rows(rows, is_reference, scratch)
        assert np.array_equal(rows, pixels[order]), (n, scratch)
