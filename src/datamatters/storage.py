"""Where a project's bytes are: the pipeline's outputs in the workspace, DVC's cache, each remote.

`datamatters disk` prints it with the commands that trim each place without losing what a
commit or an experiment still uses: a sweep of a few dozen experiments keeps every version of
every output it made in the cache, and users ask where the space went before they ask how to
get it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datamatters.pipeline import all_outputs

TRIM = (
    "dvc exp remove <names>                 # first, the experiments no longer wanted",
    "dvc gc --workspace --all-commits --all-experiments   # the cache: keeps what any commit "
    "or experiment uses",
    "dvc gc --all-commits --all-experiments --cloud -r <remote>   # the same for a remote",
)


@dataclass(frozen=True)
class Usage:
    place: str
    where: str
    size: int | None  # bytes; None where it could not be measured
    note: str = ""


def bytes_on_disk(*paths: Path) -> int:
    """Bytes of the files at or under `paths`, a hard-linked file counted once (as `du` counts)."""
    seen: dict[tuple[int, int], int] = {}
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        for file in files:
            if file.is_file() and not file.is_symlink():
                info = file.stat()
                seen[(info.st_dev, info.st_ino)] = info.st_size
    return sum(seen.values())


def project_usage(root: Path) -> list[Usage]:
    """The workspace's pipeline outputs, the cache and every configured remote of `root`."""
    from dvc.repo import Repo

    outputs = [root / path for path in all_outputs(root / "dvc.yaml")]
    found = [
        Usage("workspace", "the outputs dvc.yaml declares", bytes_on_disk(*outputs)),
    ]
    with Repo(str(root)) as repo:
        cache = Path(repo.cache.local_cache_dir)  # the files and the run cache
        found.append(Usage("DVC cache", str(cache), bytes_on_disk(cache)))
        default = repo.config["core"].get("remote")
        for name in repo.config["remote"]:
            found.append(_remote_usage(repo, name, name == default))
    return found


def _remote_usage(repo, name: str, default: bool) -> Usage:
    remote = repo.cloud.get_remote(name)
    label = f"remote '{name}'" + (" (default)" if default else "")
    try:
        size = int(remote.fs.du(remote.path, total=True)) if remote.fs.exists(remote.path) else 0
    except Exception as error:  # an unreachable remote still gets its line, with the reason
        return Usage(label, remote.path, None, f"not measured: {error}")
    return Usage(label, remote.path, size)


def render(usages: list[Usage]) -> str:
    width = max(len(u.place) for u in usages)
    lines = []
    for u in usages:
        size = f"{u.size / 2**20:>10.1f} MiB" if u.size is not None else f"{'?':>14}"
        lines.append(f"{u.place:<{width}}  {size}  {u.where}{'  ' + u.note if u.note else ''}")
    lines += ["", "To trim, without losing a committed experiment:", *(f"  {t}" for t in TRIM)]
    return "\n".join(lines)
