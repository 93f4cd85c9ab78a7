"""dvc.yaml declares exactly what each stage uses, so DVC re-runs what changed and nothing else."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import ROOT, compose_config, stage_env

DVC_YAML = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = sorted(DVC_YAML["stages"])
LIST_IMPORTS = """
import importlib, json, os, runpy, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))  # as `python stages/x.py` has it
runpy.run_path(sys.argv[1])
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps(sorted(
    m.__file__ for n, m in sys.modules.items()
    if n.startswith("datamatters") and getattr(m, "__file__", None)
    and not m.__file__.endswith("__init__.py")
)))
"""
# evaluate re-creates the generator and the judge from their checkpoints' configs, which are these:
CHECKPOINT_SECTIONS = {"evaluate": ["model", "eval.judge"]}
# every model option in conf/model/, so a new family's modules are checked as soon as it exists
MODELS = sorted(path.stem for path in (ROOT / "conf" / "model").glob("*.yaml"))
VARIANTS = [
    (),
    *((f"model={model}",) for model in MODELS),
    ("data=folder", "data.path=/x"),
    ("data=manifest",),
]


def imported_modules(stage: str, targets: set[str]) -> set[str]:
    """Files of the package that the stage script and the modules Hydra instantiates import."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            LIST_IMPORTS,
            str(ROOT / "stages" / f"{stage}.py"),
            *sorted(targets),
        ],
        env=stage_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return {str(p).split(f"{ROOT}/", 1)[1] for p in json.loads(done.stdout)}


def instantiated_modules(params_keys: list[str]) -> set[str]:
    """Modules named by `_target_`s in the params a stage reads, in every config variant."""
    targets = set()
    for overrides in VARIANTS:
        cfg = compose_config(*overrides)
        for key in params_keys:
            text = OmegaConf.to_yaml(OmegaConf.select(cfg, key))
            targets |= set(re.findall(r"_target_: (datamatters\.[\w.]+)\.\w+", text))
    return targets


SOURCE_DEP = "${data.path}"


def test_ingest_depends_on_the_source_itself():
    """The source's path is a dependency, so a changed image re-runs ingest (for the bundled
    digits, the module that reads them)."""
    assert SOURCE_DEP in DVC_YAML["stages"]["ingest"]["deps"]
    assert compose_config().data.path == "src/datamatters/data/mnist5k.py"
    assert compose_config("data=folder").data.path == compose_config("data=manifest").data.path


@pytest.mark.parametrize("stage", STAGES)
def test_deps_are_exactly_the_modules_the_stage_uses(stage):
    spec = DVC_YAML["stages"][stage]
    deps = [compose_config().data.path if d == SOURCE_DEP else d for d in spec["deps"]]
    declared = {d for d in deps if d.startswith(("src/", "stages/"))}
    sections = spec["params"] + CHECKPOINT_SECTIONS.get(stage, [])
    used = imported_modules(stage, instantiated_modules(sections)) | {f"stages/{stage}.py"}
    assert len(deps) == len(set(deps)), f"{stage} lists a dependency twice"
    assert used - declared == set(), f"{stage} uses modules dvc.yaml does not list"
    assert declared - used == set(), f"{stage} lists modules it does not use"


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
