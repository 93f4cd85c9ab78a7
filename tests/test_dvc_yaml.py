"""dvc.yaml declares exactly what each stage uses, so DVC re-runs what changed and nothing else."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, compose_config, stage_env
from datamatters import deps

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = sorted(DVC_YAML["stages"])
SOURCE_DEP = "${data.path}"


def test_ingest_depends_on_the_source_itself():
    """The source's path is a dependency, so a changed image re-runs ingest (for the bundled
    digits, the module that reads them)."""
    assert SOURCE_DEP in DVC_YAML["stages"]["ingest"]["deps"]
    assert compose_config().data.path == "src/datamatters/data/mnist5k.py"
    assert compose_config("data=folder").data.path == compose_config("data=manifest").data.path


def test_dvc_yaml_lists_exactly_the_sources_each_stage_can_run():
    assert deps.problems(ROOT) == []


def test_every_option_of_every_group_is_composed():
    """A new option (a model family, a data source) is checked as soon as its file exists."""
    composed = {o for variant in deps.config_variants(ROOT / "conf") for o in variant}
    for group in ("model", "data", "executor", "quality", "augment", "trainer", "filters"):
        for option in (ROOT / "conf" / group).glob("*.yaml"):
            assert f"{group}={option.stem}" in composed, option
    assert "classifier@judge=cnn" in composed


@pytest.fixture
def project_copy(tmp_path):
    """What the check reads: the stage scripts, the package, the config and dvc.yaml."""
    for name in ("stages", "src", "conf"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    return tmp_path


def test_a_stage_importing_an_unlisted_module_fails_the_check_naming_it(project_copy):
    script = project_copy / "stages" / "judge.py"
    script.write_text(script.read_text() + "\nfrom datamatters.scores.kid import kid  # noqa\n")
    done = subprocess.run(
        [sys.executable, "-m", "datamatters.cli", "deps", "--check"],
        cwd=project_copy,
        env=stage_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "judge: runs src/datamatters/scores/kid.py but does not list it" in done.stdout


def test_write_makes_the_lists_exact_and_keeps_everything_else(project_copy):
    text = (project_copy / "dvc.yaml").read_text()
    edited = text.replace("      - src/datamatters/scores/frechet.py\n", "", 1)
    edited = edited.replace(
        "      - stages/augment.py\n", "      - stages/augment.py\n      - src/datamatters/cli.py\n"
    )
    (project_copy / "dvc.yaml").write_text(edited)
    assert deps.problems(project_copy) != []
    assert deps.write(project_copy) == ["augment", "judge"]
    assert deps.problems(project_copy) == []
    written = (project_copy / "dvc.yaml").read_text()
    assert sorted(written.splitlines()) == sorted(text.splitlines()), "only the order may differ"
    assert "# holds data/reference's pixels" in written


@pytest.mark.parametrize("stage", STAGES)
def test_params_are_exactly_the_sections_the_stage_loads(stage):
    script = (ROOT / "stages" / f"{stage}.py").read_text()
    call = re.search(r"load_params\(([^)]*)\)", script).group(1)
    loaded = re.findall(r'"([\w.]+)"', call)
    assert sorted(loaded) == sorted(DVC_YAML["stages"][stage]["params"])


def declared(stage: dict, kind: str) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else o for o in stage.get(kind, [])]


def test_every_metrics_file_a_stage_writes_is_declared_once():
    stage_metrics = [m for s in DVC_YAML["stages"].values() for m in declared(s, "metrics")]
    top_level = DVC_YAML["metrics"]
    assert len(set(stage_metrics + top_level)) == len(stage_metrics + top_level)
    assert {*stage_metrics, *top_level} == {
        f"metrics/{name}.json"
        for name in (
            "ingest",
            "reference_quality",
            "quality",
            "labeling",
            "augment",
            "judge",
            "evaluate",
            "real_floor",
            "train/metrics",
        )
    }


@pytest.mark.parametrize("stage", ["judge", "quality", "labeling", "reference_features"])
def test_editing_a_generator_never_reruns_the_stages_that_measure_or_clean_data(stage):
    """The generators' networks and training logic live apart from the judge's network."""
    generator_modules = {
        f"src/datamatters/models/{name}.py"
        for name in ("networks", "generative", "dcgan", "vae", "flow", "unet", "diffaugment")
    }
    assert generator_modules.isdisjoint(DVC_YAML["stages"][stage]["deps"])


def test_no_uncached_out_keeps_a_data_stage_from_the_run_cache():
    """DVC saves no run-cache entry for a stage with an uncached out that is not a metric or a
    plot; then every seed of a sweep would re-run every data stage."""
    for name, stage in DVC_YAML["stages"].items():
        uncached = [o for o in stage.get("outs", []) if isinstance(o, dict) and not _cached(o)]
        assert name == "train" or not uncached, f"{name}: declare {uncached} under metrics/plots"


def _cached(out: dict) -> bool:
    return next(iter(out.values())).get("cache", True)


def test_stage_scripts_import_the_package_of_their_own_workspace(tmp_path):
    """`dvc exp run --queue` runs a copy of the repo: its stages must run the copy's code, which
    is what DVC hashed, even when the package is installed (editable) from another checkout."""
    copy = tmp_path / "exp-workspace"
    (copy / "stages").mkdir(parents=True)
    (copy / "src" / "datamatters").mkdir(parents=True)
    (copy / "stages" / "_workspace.py").write_text((ROOT / "stages" / "_workspace.py").read_text())
    (copy / "src" / "datamatters" / "__init__.py").write_text("")
    probe = copy / "stages" / "probe.py"
    probe.write_text("import _workspace\nimport datamatters\nprint(datamatters.__file__)\n")
    done = subprocess.run(
        [sys.executable, str(probe)], env=stage_env(), capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str(copy / "src" / "datamatters" / "__init__.py")
    assert all(
        "import _workspace" in (ROOT / "stages" / f"{stage}.py").read_text() for stage in STAGES
    )
