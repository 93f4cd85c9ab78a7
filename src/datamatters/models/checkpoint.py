"""Self-describing checkpoints: the Hydra config that builds a module beside its weights.

Storing only plain data and tensors means a checkpoint loads with `torch.load(weights_only=True)`,
so opening a checkpoint pulled from a shared DVC remote can never run code from inside it.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch import nn

from datamatters.atomic import atomic_path
from datamatters.errors import InputError
from datamatters.pipeline import rerun_fix

FORMAT = 1
_PLAIN_SCALARS = (str, int, float, bool, type(None))
# Building a module runs the callables its config names, so a checkpoint from a shared remote may
# name only these: anything else (`os.system`, say) would turn a weights file back into code.
TRUSTED_TARGETS = ("datamatters.", "torch.optim.")
_RERUN_HINT = "re-run the stage that produces it (`dvc repro train` or `dvc repro judge`)"


def save_checkpoint(
    module: nn.Module, config: dict[str, Any], path: str | os.PathLike[str]
) -> None:
    """Write `{"config", "state_dict", "format"}` atomically; `config` must rebuild `module`.

    Pass `OmegaConf.to_container(cfg, resolve=True)` rather than a DictConfig: only plain data
    survives `weights_only=True` loading.
    """
    _check_plain(config, "config")
    if "_target_" not in config:
        raise ValueError("config has no `_target_`, so the checkpoint could not rebuild the module")
    payload = {"config": config, "state_dict": module.state_dict(), "format": FORMAT}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild the module from its stored config and load its weights strictly; in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; {_RERUN_HINT}")
    payload = _read(path, map_location)
    try:
        module = instantiate(payload["config"])
        module.load_state_dict(payload["state_dict"], strict=True)
    except (InstantiationException, RuntimeError) as error:
        raise ValueError(
            f"checkpoint {path} does not match the current code ({error}); {_RERUN_HINT}"
        ) from error
    return module.to(map_location).eval()


def load_stage_input(path: str | os.PathLike[str]) -> nn.Module:
    """`load_checkpoint` for a stage script: any problem becomes one line naming the fix."""
    try:
        return load_checkpoint(path)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(path, str(err), rerun_fix(path)) from err


def _read(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """`torch.load` with weights only; every way a file can be damaged becomes one ValueError."""
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError) as error:
        # torch's own message suggests weights_only=False, which is exactly what must not be done.
        reason = type(error).__name__
        message = f"checkpoint {path} is damaged or not weights-only data ({reason}); {_RERUN_HINT}"
        raise ValueError(message) from error
    if not (
        isinstance(payload, dict)
        and payload.get("format") == FORMAT
        and isinstance(payload.get("config"), dict)
        and isinstance(payload.get("state_dict"), dict)
    ):
        message = f"checkpoint {path} is not a datamatters checkpoint (format {FORMAT})"
        raise ValueError(f"{message}; {_RERUN_HINT}")
    untrusted = sorted(t for t in _targets(payload["config"]) if not t.startswith(TRUSTED_TARGETS))
    if untrusted:
        raise ValueError(
            f"checkpoint {path} names code outside {', '.join(TRUSTED_TARGETS)} ({untrusted}); "
            "refusing to build it. Only load checkpoints this pipeline wrote"
        )
    return payload


def _targets(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [str(value["_target_"])] if "_target_" in value else []
        return found + [t for item in value.values() for t in _targets(item)]
    if isinstance(value, list):
        return [t for item in value for t in _targets(item)]
    return []


def _check_plain(value: Any, where: str) -> None:
    """Refuse anything but JSON-like data, naming the offending key so the caller can fix it."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a non-string key {key!r}; configs must be plain data")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif not isinstance(value, _PLAIN_SCALARS):
        raise TypeError(
            f"{where} is a {type(value).__name__}; checkpoint configs must be plain dicts, lists, "
            "strings, numbers, booleans or None (use OmegaConf.to_container(cfg, resolve=True))"
        )
