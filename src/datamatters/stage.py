"""What every stage script shares: its params section, its log format and how it fails.

A stage that meets bad input stops before writing anything and says which stage, which file and
what to do about it; the user never has to read a traceback to find out.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("datamatters")

PARAMS_FILE = Path("params.yaml")


class StageError(Exception):
    """Bad input or configuration, reported as `[stage] file: problem. Fix: ...`."""

    def __init__(self, stage: str, path: str | Path, problem: str, fix: str) -> None:
        self.stage, self.path, self.problem, self.fix = stage, str(path), problem, fix
        super().__init__(f"[{stage}] {path}: {problem}. Fix: {fix}")


def parse_paths(description: str, *names: str) -> argparse.Namespace:
    """Paths arrive as required flags from dvc.yaml's `cmd`, the one place they are written."""
    parser = argparse.ArgumentParser(description=description)
    for name in names:
        parser.add_argument(f"--{name}", required=True)
    return parser.parse_args()


def load_params(stage: str, *keys: str, path: Path = PARAMS_FILE) -> dict[str, DictConfig]:
    """The params sections a stage reads (the same keys its dvc.yaml entry lists)."""
    if not path.is_file():
        raise StageError(
            stage,
            path,
            "params file not found",
            "run `datamatters params` to compose it from conf/",
        )
    params = OmegaConf.load(path)
    sections = {}
    for key in keys:
        section = OmegaConf.select(params, key)
        if section is None:
            raise StageError(
                stage,
                path,
                f"missing params section '{key}'",
                "re-compose it from conf/ with `datamatters params`",
            )
        sections[key] = section
    return sections


def _quiet_library_chatter() -> None:
    """Drop third-party lines that say nothing about this run (adverts, upstream deprecations)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("💡 Tip")
    )
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's main with its progress format; turn StageError into a one-line exit 2."""
    _quiet_library_chatter()
    logging.basicConfig(
        level=logging.INFO, format=f"[{name}] %(message)s", stream=sys.stdout, force=True
    )
    started = time.perf_counter()
    try:
        main()
    except StageError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    log.info("done in %.1f s", time.perf_counter() - started)
