"""A user's own images are a real DVC dependency: changes re-run ingest, versions round-trip.

Real git and dvc in a temporary repository: the folder lives inside it under `dvc add`, as the
README recommends, and travels through a local DVC remote to a fresh clone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_project, sh, stages_run, write_image

SOURCE = "data/source"


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def folder_project(tmp_path_factory) -> Path:
    repo = make_project(
        tmp_path_factory.mktemp("work") / "project",
        ["data=folder", f"data.path={SOURCE}", "data.image_size=16"],
    )
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        for i in range(10):
            pixels = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
            write_image(repo / SOURCE / label / f"{i:02d}.png", pixels)
    sh(repo, "dvc", "remote", "add", "-f", "-d", "local", str(repo.parent / "remote"))
    sh(repo, "dvc", "add", SOURCE)
    assert "Running stage 'ingest'" in sh(repo, "dvc", "repro", "ingest")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "20 images")
    return repo


def test_adding_an_image_makes_ingest_changed_and_repro_reruns_it(folder_project):
    repo = folder_project
    assert "ingest" not in sh(repo, "dvc", "status", "ingest")
    write_image(repo / SOURCE / "cat" / "new.png", np.full((20, 20, 3), 9, dtype=np.uint8))
    status = sh(repo, "dvc", "status", "ingest")
    assert "ingest" in status and "changed deps" in status and SOURCE in status
    sh(repo, "dvc", "add", SOURCE)
    assert stages_run(sh(repo, "dvc", "repro", "ingest")) == {"ingest"}
    assert json.loads((repo / "metrics" / "ingest.json").read_text())["images"] == 21
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "21 images")


def test_push_clone_pull_restores_each_version_of_the_folder(folder_project):
    repo = folder_project
    old, new = sh(repo, "git", "rev-parse", "HEAD~1", "HEAD").split()
    versions = {}
    for rev in (old, new):
        sh(repo, "git", "checkout", "-q", rev)
        sh(repo, "dvc", "checkout", "-q", f"{SOURCE}.dvc")
        versions[rev] = tree_digest(repo / SOURCE)
    assert len(versions[new]) == len(versions[old]) + 1
    sh(repo, "dvc", "push", "--all-commits")

    clone = repo.parent / "clone"
    sh(repo.parent, "git", "clone", "-q", str(repo), str(clone))
    for rev in (old, new):
        sh(clone, "git", "checkout", "-q", rev)
        sh(clone, "dvc", "pull", "-q", f"{SOURCE}.dvc", "ingest")  # the stages run here
        assert tree_digest(clone / SOURCE) == versions[rev], f"{rev}: not the same images"
        assert "ingest" not in sh(clone, "dvc", "status", "ingest")
