"""End to end: real `dvc repro` in a temporary git repo on a tiny config, then push/clone/pull.

Sweeps (a set traced, lineage both ways, plots diff, the queue) run in tests/test_sharing.py.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import TINY, sh, stage_env, stages_run

pytestmark = pytest.mark.slow

STAGES = {
    "ingest",
    "reference_quality",
    "quality",
    "labeling",
    "augment",
    "judge",
    "reference_features",
    "train",
    "evaluate",
    "real_floor",
}


@pytest.fixture(scope="module")
def project(reproduced) -> Path:
    """The toy-scale project after its first `dvc repro`, next to where its DVC remote resolves."""
    return reproduced.project


def test_repro_runs_every_stage_and_writes_metrics(project, reproduced):
    assert stages_run(reproduced.output) == STAGES
    metrics = json.loads((project / "metrics" / "evaluate.json").read_text())
    for name in ("fid_judge_100", "kid_judge_100_mean", "is_judge_100_mean"):
        assert math.isfinite(metrics[name]), name
    assert metrics["generated_images"] == 100
    assert 1.0 <= metrics["is_judge_100_mean"] <= 10.0
    judge = json.loads((project / "metrics" / "judge.json").read_text())
    assert judge["classes"] == 10 and 0.0 <= judge["accuracy_holdout"] <= 1.0
    assert (project / "plots" / "samples.png").stat().st_size > 0
    assert "fid_judge_100" in sh(project, "dvc", "metrics", "show")
    floor = json.loads((project / "metrics" / "real_floor.json").read_text())
    assert floor["generated_images"] == 100 and floor["fid_judge_100"] < metrics["fid_judge_100"]


def test_deciding_stages_store_no_pixels_and_readers_depend_on_the_pixels(project):
    """reference_quality, quality and labeling point at ingest's pixels, and augment at the
    originals it keeps; a stage reading one of their outputs must list the pointed directory
    too, or DVC would neither re-run it when the pixels change nor pull them for it."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    pointers = sorted(p.parent.name for p in (project / "data").glob("*/pixels.json"))
    assert pointers == ["augmented", "labeled", "quality", "reference"]
    holding = sorted(p.parent.name for p in (project / "data").glob("*/images"))
    assert holding == ["augmented", "raw", "raw_reference", "real_sample"]
    for name, stage in stages.items():
        for dep in stage.get("deps", []):
            pointer = project / dep / "pixels.json"
            if pointer.is_file():
                store = f"data/{json.loads(pointer.read_text())['directory']}"
                assert store in stage["deps"], f"{name} reads {dep} but does not depend on {store}"


def test_noop_repro_runs_nothing(project):
    assert stages_run(sh(project, "dvc", "repro")) == set()


# dependency order, so each stage's inputs exist when it is killed
ORDER = [
    "ingest",
    "reference_quality",
    "judge",
    "quality",
    "labeling",
    "augment",
    "reference_features",
    "train",
    "evaluate",
    "real_floor",
]


def killed_after(project: Path, command: list[str], delay: float) -> bool:
    """Run `command` in its own process group and SIGKILL the group (DVC and the stage's Python)
    `delay` s after it starts, as an out-of-memory killer or a pre-empted machine would.
    True if it was still running."""
    process = subprocess.Popen(
        command,
        cwd=project,
        env=stage_env() | {"DVC_NO_ANALYTICS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + delay
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # DVC rewrites its own lock file (.dvc/tmp/rwlock) in place; a kill mid-write leaves it empty
    # and every later DVC command refuses to start until it is removed, as a user would remove it.
    # That file is DVC's, not a stage output, so clearing it hides nothing this test checks.
    rwlock = project / ".dvc" / "tmp" / "rwlock"
    if rwlock.is_file() and not rwlock.read_text().strip():
        rwlock.unlink()
    return True


def out_hashes(project: Path) -> dict[str, str]:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for s in lock["stages"].values() for o in s.get("outs", [])}


def test_each_stage_killed_at_a_random_point_then_repro_completes_to_the_same_outputs(project):
    """Nothing a kill leaves behind is taken as valid: after one SIGKILL per stage, `dvc repro`
    ends with `dvc status` clean and every output's hash as in the uninterrupted run."""
    assert set(ORDER) == STAGES
    uninterrupted = out_hashes(project)
    rng = random.Random(13)
    for stage in ORDER:
        command, delay = ["dvc", "repro", "-f", "-s", stage], rng.uniform(0.5, 5.0)
        for _ in range(10):
            if killed_after(project, command, delay) and f"{stage}:" in sh(
                project, "dvc", "status", stage
            ):
                break  # killed mid-way, and DVC knows the stage is not done
            # it finished first, or the kill came once its outputs were whole and the same as
            # before (DVC then rightly takes them as done): run it again, kill it sooner
            delay /= 2
        else:
            pytest.fail(f"{stage}: no kill left it undone; a partial output may pass as done")
    sh(project, "dvc", "repro")
    assert "up to date" in sh(project, "dvc", "status")
    assert out_hashes(project) == uninterrupted
    scratch = [p for p in project.rglob("*.tmp") if not {".dvc", ".git"} & set(p.parts)]
    assert not scratch, f"temporary files left behind: {scratch}"


def test_training_change_reruns_only_train_and_evaluate(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"]["g_optimizer"]["lr"] = 0.0001
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages_run(sh(project, "dvc", "repro")) == {"train", "evaluate"}


def test_push_clone_pull_restores_everything(project):
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "--allow-empty", "-m", "after the edits above")
    sh(project, "dvc", "push")
    assert (project.parent / "datamatters-dvc-remote").is_dir(), (
        "the default remote sits beside the repo"
    )
    clone = project.parent / "clone"
    sh(project.parent, "git", "clone", "-q", str(project), str(clone))
    sh(clone, "dvc", "pull")
    assert (clone / "models" / "generator.pt").is_file() and (clone / "data" / "reference").is_dir()
    assert "Data and pipelines are up to date" in sh(clone, "dvc", "status")


def test_exp_run_composes_conf_with_overrides(project):
    overrides = [arg for item in ["model=vae", *TINY] for arg in ("-S", item)]
    output = sh(project, "dvc", "exp", "run", *overrides)
    assert stages_run(output) == {"train", "evaluate"}, "the data stages' params are unchanged"
    assert "VAE" in yaml.safe_load((project / "params.yaml").read_text())["model"]["_target_"]
    shown = sh(project, "dvc", "exp", "show", "--json")
    assert "fid_judge_100" in shown and "datamatters.models.vae.VAE" in shown


def test_conditional_exp_in_a_temp_workspace(project):
    """`--temp` runs in a copy under .dvc/tmp/exps, as queued experiments do."""
    overrides = [arg for item in ["model=cdcgan", *TINY] for arg in ("-S", item)]
    output = sh(project, "dvc", "exp", "run", "--temp", "-n", "cond", *overrides)
    assert {"train", "evaluate"} <= stages_run(output)
    assert "cond_acc_judge_100" in sh(project, "dvc", "exp", "show", "--json")
