"""Scores against injected ground truth, the printed table, and the gallery of flagged images."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from datamatters.quality.gallery import save_gallery
from datamatters.quality.report import ground_truth_scores, summary_table


def manifest(injected, keep, issues=None):
    return pd.DataFrame(
        {
            "injected": pd.Series(injected, dtype="string"),
            "keep": keep,
            "issues": issues or [[] for _ in keep],
        }
    )


def test_scores_against_injected_ground_truth():
    rows = manifest(
        injected=["blur", "blur", "noise", None, None, None, "label_flip"],
        keep=[False, True, False, False, True, True, True],
    )
    scores = ground_truth_scores(rows)
    assert scores["recall_blur"] == 0.5 and scores["recall_noise"] == 1.0
    assert scores["injected_blur"] == 2
    assert scores["precision"] == round(2 / 3, 6)
    assert scores["recall"] == round(2 / 3, 6)
    assert scores["clean_dropped_fraction"] == 0.25, "label flips count as clean for quality"
    assert "recall_label_flip" not in scores


def test_no_ground_truth_no_scores():
    assert ground_truth_scores(manifest([None, None], [True, False])) == {}
    assert ground_truth_scores(pd.DataFrame({"keep": [True]})) == {}


def test_summary_table_lists_every_check():
    report = {
        "images": 10,
        "kept": 9,
        "kept_fraction": 0.9,
        "blur_flagged": 1,
        "blur_threshold": 12.5,
    }
    table = summary_table(report, {"blur": "drop", "noise": None})
    assert "blur" in table and "12.5" in table and "noise" in table and "off" in table
    assert table.endswith("kept 9 of 10 images (90.00%)")


def test_gallery_shows_flagged_images_per_check(tmp_path):
    images = np.zeros((4, 8, 8, 1), dtype=np.uint8)
    images[1] = 255
    rows = manifest([None] * 4, [True, False, True, False], [[], ["blur"], [], ["undecodable"]])
    path = tmp_path / "gallery.png"
    save_gallery(images, rows, ["blur", "undecodable"], path, per_check=3, scale=2)
    with Image.open(path) as gallery:
        pixels = np.asarray(gallery)
    assert gallery.size == (120 + 3 * 18 + 2, 2 * 20)
    assert pixels[2:18, 120:136].min() == 255, "the blurred image is shown in the first slot"


def test_gallery_with_every_check_off_is_one_row_that_says_so(tmp_path):
    images = np.zeros((2, 8, 8, 1), dtype=np.uint8)
    path = tmp_path / "gallery.png"
    save_gallery(images, manifest([None] * 2, [True, True], [[], []]), [], path, per_check=3)
    with Image.open(path) as gallery:
        assert gallery.size == (120 + 3 * 18 + 2, 20)
        assert np.asarray(gallery).max() > 200, "the row carries its text"
