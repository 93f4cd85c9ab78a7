"""What every stage script shares: its params section, its log format and how it fails.

A stage that meets bad input stops before writing anything and says which stage, which file and
what to do about it; the user never has to read a traceback to find out.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from datamatters.atomic import remove_abandoned
from datamatters.errors import InputError
from datamatters.pipeline import DVC_YAML, output_folders

log = logging.getLogger("datamatters")

PARAMS_FILE = Path("params.yaml")


def parse_paths(description: str, *names: str) -> argparse.Namespace:
    """Paths arrive as required flags from dvc.yaml's `cmd`, the one place they are written."""
    parser = argparse.ArgumentParser(description=description)
    for name in names:
        parser.add_argument(f"--{name}", required=True)
    return parser.parse_args()


def load_params(*keys: str, path: Path = PARAMS_FILE) -> dict[str, DictConfig]:
    """The params sections a stage reads (the same keys its dvc.yaml entry lists)."""
    if not path.is_file():
        raise InputError(
            path,
            "params file not found",
            "run `datamatters params` to compose it from conf/",
        )
    params = OmegaConf.load(path)
    sections = {}
    for key in keys:
        section = OmegaConf.select(params, key)
        if section is None:
            raise InputError(
                path,
                f"missing params section '{key}'",
                "re-compose it from conf/ with `datamatters params`",
            )
        sections[key] = section
    return sections


# Lightning's start-up banners and end-of-fit notes, printed once per `Trainer` (five times in a
# label audit): they say nothing a stage's own lines do not, and hide the warnings that matter.
# "GPU available: True, used: False" is kept: that one is worth acting on.
LIGHTNING_CHATTER = re.compile(
    r"💡 Tip|GPU available: False|[TH]PU available: False|`Trainer\.fit` stopped: "
)


def _quiet_library_chatter() -> None:
    """Drop third-party lines that say nothing about this run (banners, adverts, deprecations)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not LIGHTNING_CHATTER.match(str(record.msg))
    )
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")
    warnings.filterwarnings("ignore", message=".*defined a `validation_step` but have no")


def process_rank() -> int:
    """This process's global rank under torchrun, SLURM or Lightning's launcher (0 alone)."""
    for variable in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if variable in os.environ:
            return int(os.environ[variable])
    return 0


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's main with its progress format; an `InputError` becomes one line and exit 2.

    The line names the stage here, once, so library code raises its errors without knowing which
    stage it serves."""
    _quiet_library_chatter()
    rank = process_rank()
    logging.basicConfig(
        # a DDP worker says only what goes wrong: rank 0 reports the run
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"[{name}] %(message)s" if rank == 0 else f"[{name} rank {rank}] %(message)s",
        stream=sys.stdout,
        force=True,
    )
    started = time.perf_counter()
    if DVC_YAML.is_file():  # what killed runs left, even where DVC restored instead of re-running
        for folder in output_folders():
            remove_abandoned(folder)
    try:
        main()
    except InputError as err:
        print(f"error: [{name}] {err}", file=sys.stderr)
        sys.exit(2)
    log.info("done in %.1f s", time.perf_counter() - started)
