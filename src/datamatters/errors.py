"""The one error a user is meant to read: which file, what is wrong with it, what to do.

Library code cannot know which stage called it (the quality checks run in two stages, the
contract reader in seven), so it raises `InputError` without a stage name and `run_stage` adds
the name of the stage that was running: `[quality] data/raw/manifest.parquet: ... Fix: ...`.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input or configuration the user can fix, reported as `file: problem. Fix: ...`."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{path}: {problem}. Fix: {fix}")
