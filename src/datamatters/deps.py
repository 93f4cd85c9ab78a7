"""dvc.yaml's source dependencies, derived from the code instead of kept by hand.

A stage's `deps` must list every module of the package its script can run, for every config
option that changes which modules run (each `_target_` that Hydra instantiates), or DVC would
not re-run the stage when one of them changes; and no module it cannot run, or DVC would re-run
it for nothing. The modules are found statically: every `import` of the package in the stage
script, followed through the package (imports inside functions too, since a function the stage
calls is code the stage runs), plus the modules named by `_target_` in the params sections the
stage reads, under every option of every config group. `datamatters deps --check` compares that
with dvc.yaml; `datamatters deps --write` rewrites the lists.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

PACKAGE = "datamatters"
# Stages that rebuild modules from checkpoints: their configs are these sections' `_target_`s.
CHECKPOINT_SECTIONS = {"evaluate": ["model", "judge"]}
# A group option that cannot compose without a value the user supplies.
REQUIRED = {"data=folder": ["data.path=/any"]}
DATA_SOURCE = "${data.path}"  # ingest's source: a folder, a manifest's folder, or for the
# bundled digits the module that reads them


def module_file(name: str, src: Path) -> Path | None:
    """The source file of module `name` under `src`, or None for a name that is not a module
    (an attribute imported from a package)."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, src: Path) -> set[str]:
    """Modules of the package that the file at `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] == PACKAGE and module_file(n, src)}
    return found


def closure(modules: Iterable[str], src: Path) -> set[str]:
    """`modules` and everything of the package they import, transitively."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += imported_modules(module_file(name, src), src) - seen
    return seen


def config_variants(config_dir: Path) -> list[list[str]]:
    """The default composition, then each option of each group in the defaults list."""
    defaults = yaml.safe_load((config_dir / "config.yaml").read_text())["defaults"]
    variants: list[list[str]] = [[]]
    for entry in defaults:
        if not isinstance(entry, dict):
            continue  # _self_
        ((key, _),) = entry.items()
        group = key.split("@")[0]
        for option in sorted(p.stem for p in (config_dir / group).glob("*.yaml")):
            override = f"{key}={option}"
            variants.append([override, *REQUIRED.get(f"{group}={option}", [])])
    return variants


def compositions(config_dir: Path) -> list[dict]:
    """The params tree of every config variant, interpolations left as written."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base=None):
        return [
            OmegaConf.to_container(compose(config_name="config", overrides=v), resolve=False)
            for v in config_variants(config_dir)
        ]


def instantiated_modules(sections: list[str], trees: list[dict]) -> set[str]:
    """Modules of the package named by a `_target_` in `sections` of any of the params `trees`."""
    modules = set()
    for tree in trees:
        for section in sections:
            node: Any = tree
            for key in section.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            modules |= {target.rsplit(".", 1)[0] for target in _targets(node)}
    return {m for m in modules if m.split(".")[0] == PACKAGE}


def _targets(tree: Any) -> Iterable[str]:
    if isinstance(tree, dict):
        if isinstance(tree.get("_target_"), str):
            yield tree["_target_"]
        for value in tree.values():
            yield from _targets(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _targets(value)


def stage_sources(root: Path, stage: str, sections: list[str], trees: list[dict]) -> list[str]:
    """The source files `stage` can run, as dvc.yaml paths: its script, then the package's
    modules (package `__init__` files left out: they hold no code that changes results)."""
    src = root / "src"
    script = root / "stages" / f"{stage}.py"
    modules = closure(imported_modules(script, src) | instantiated_modules(sections, trees), src)
    files = {module_file(m, src).relative_to(root).as_posix() for m in modules}
    return [f"stages/{stage}.py", *sorted(f for f in files if not f.endswith("__init__.py"))]


def derived(root: Path) -> dict[str, list[str]]:
    """Every stage's source dependencies, derived from the code, in dvc.yaml's spelling: the
    default data source's module is written `${data.path}`, as ingest lists its source."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    trees = compositions(root / "conf")
    source = trees[0]["data"]["path"]
    result = {}
    for name, spec in stages.items():
        sections = spec.get("params", []) + CHECKPOINT_SECTIONS.get(name, [])
        files = stage_sources(root, name, sections, trees)
        result[name] = [DATA_SOURCE if f == source else f for f in files]
    return result


def is_source(dep: str) -> bool:
    return dep.startswith(("src/", "stages/")) or dep == DATA_SOURCE


def problems(root: Path) -> list[str]:
    """What dvc.yaml gets wrong about each stage's sources; empty when it is exact."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    found = []
    for name, wanted in derived(root).items():
        deps = stages[name].get("deps", [])
        listed = {d for d in deps if is_source(d)}
        if len(deps) != len(set(deps)):
            found.append(f"{name}: lists a dependency twice")
        found += [f"{name}: runs {m} but does not list it" for m in sorted(set(wanted) - listed)]
        found += [f"{name}: lists {m} but cannot run it" for m in sorted(listed - set(wanted))]
    return found


def write(root: Path) -> list[str]:
    """Make each stage's source deps in dvc.yaml exact, in place: stale entries removed, missing
    ones added after the last source entry; the order, the other deps and comments kept. The
    stages whose lists changed."""
    from ruamel.yaml import YAML

    parser = YAML()
    parser.preserve_quotes = True
    parser.width = 4096  # never re-wrap a long `cmd`
    parser.indent(mapping=2, sequence=4, offset=2)
    path = root / "dvc.yaml"
    document = parser.load(path.read_text())
    changed = []
    for name, wanted in derived(root).items():
        deps = document["stages"][name]["deps"]
        stale = [i for i, dep in enumerate(deps) if is_source(dep) and dep not in wanted]
        for index in reversed(stale):
            del deps[index]
        missing = [dep for dep in wanted if dep not in deps]
        last = max((i for i, dep in enumerate(deps) if is_source(dep)), default=-1)
        for offset, dep in enumerate(missing, 1):
            deps.insert(last + offset, dep)
        if stale or missing:
            changed.append(name)
    if changed:
        with path.open("w") as out:
            parser.dump(document, out)
    return changed
