"""Which stages an edit of one source file makes DVC re-run, read from DVC itself.

    python benchmarks/rerun_scope.py [--rev HEAD]

In a fresh clone of `--rev` with its outputs pulled from the DVC remote (so push first), appends
a comment line to each file below in turn and asks `dvc status` which stages changed: those
re-run, and a stage downstream of them re-runs only if one of their outputs changes. Each edit is
undone before the next.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project_runs import ROOT, run  # noqa: E402

EDITS = {
    "a generator network": "src/datamatters/models/networks.py",
    "the judge network": "src/datamatters/models/judge_network.py",
    "a score (KID)": "src/datamatters/scores/kid.py",
    "a quality check": "src/datamatters/quality/checks.py",
}


def stages_for(clone: Path, path: str) -> list[str]:
    source = clone / path
    original = source.read_text()
    source.write_text(original + "# an edit\n")
    try:
        status = json.loads(run(["dvc", "status", "--json"], clone)[1].strip().splitlines()[-1])
    finally:
        source.write_text(original)
    return sorted(name.split(":")[-1] for name in status)


def default_remote() -> tuple[str, str]:
    """This project's default DVC remote: its name and where it is."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return repo.config["core"]["remote"], repo.cloud.get_remote().path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rev", default="HEAD")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="datamatters-rerun-") as tmp:
        clone = Path(tmp) / "clone"
        run(["git", "clone", "-q", str(ROOT), str(clone)], Path(tmp))
        run(["git", "checkout", "-q", args.rev], clone)
        # the clone's remote is this project's, wherever the clone sits
        name, location = default_remote()
        run(["dvc", "remote", "modify", "--local", name, "url", location], clone)
        run(["dvc", "pull", "-q"], clone)
        _, clean = run(["dvc", "status"], clone)
        print(f"before any edit: {clean.strip().splitlines()[-1]}")
        print("| edited | stages that re-run (`dvc status`) |")
        print("|---|---|")
        for label, path in EDITS.items():
            print(f"| {label} (`{path}`) | {', '.join(stages_for(clone, path))} |")


if __name__ == "__main__":
    main()
