"""Atomic writes, so an interrupted stage never leaves an output DVC would cache as valid."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datamatters.errors import InputError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; on success it replaces `path`, on error it is removed.

    Works for files and directories alike: the caller writes whatever it wants at the yielded
    path. The temporary sits in the same directory so the final rename stays on one filesystem;
    one that a killed process left there is removed by the next write to the same folder.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(target.parent)  # left by processes killed mid-write
    prefix = f".{target.name}.{os.getpid()}."  # the writer's PID: see `remove_abandoned`
    scratch = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
    tmp = scratch / target.name
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(tmp, target)
    except OSError as error:
        if error.errno in DISK_FULL:
            raise disk_full(target) from error
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def disk_full(target: Path) -> InputError:
    """The error for an output that did not fit: the write stopped before `target` was replaced,
    so what DVC sees there is the previous output or none, never a partial one."""
    where = target.parent.resolve()
    return InputError(
        target,
        f"no space left on the device holding {where}; nothing was written in its place",
        f"free space there (`df -h {where}` shows it; `dvc gc --workspace --all-commits "
        "--all-experiments` drops cached outputs that no commit or experiment uses), then run "
        "`dvc repro` again",
    )


def remove_abandoned(folder: str | os.PathLike[str]) -> None:
    """Remove the temporaries in `folder` whose writer is no longer running.

    A killed stage leaves its temporary behind, and the next write into the same folder removes
    it; but DVC may restore that output from its run cache instead of running the stage again, so
    every stage also sweeps the output folders at its start.
    """
    for scratch in Path(folder).glob(".*.*.*.tmp"):
        pid = scratch.name[1:-4].rsplit(".", 2)[-2]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(scratch, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], payload: dict) -> None:
    """Metrics files: sorted keys and a trailing newline so git diffs stay readable."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
