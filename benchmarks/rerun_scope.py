"""Which stages an edit of one source file makes DVC re-run, read from DVC itself.

    python benchmarks/rerun_scope.py [--rev HEAD]

In a fresh clone of `--rev` with its outputs pulled from the DVC remote (so push first), appends
a comment line to each file below in turn and asks DVC: `dvc status` (the stages whose own
dependencies changed: what must re-run) and `dvc repro --dry` (those and every stage downstream
of them: what re-runs if their outputs change too). Each edit is undone before the next.
"""

from __future__ import annotations

import argparse
import json
import re
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
WOULD_RUN = re.compile(r"Running stage '(\w+)'")


def stages_for(clone: Path, path: str) -> tuple[list[str], list[str]]:
    source = clone / path
    original = source.read_text()
    source.write_text(original + "# an edit\n")
    try:
        status = json.loads(run(["dvc", "status", "--json"], clone)[1].strip().splitlines()[-1])
        dry = run(["dvc", "repro", "--dry"], clone)[1]
    finally:
        source.write_text(original)
    changed = sorted(name.split(":")[-1] for name in status)
    return changed, WOULD_RUN.findall(dry)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rev", default="HEAD")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="datamatters-rerun-") as tmp:
        clone = Path(tmp) / "clone"
        run(["git", "clone", "-q", str(ROOT), str(clone)], Path(tmp))
        run(["git", "checkout", "-q", args.rev], clone)
        run(["dvc", "pull", "-q"], clone)
        _, clean = run(["dvc", "status"], clone)
        print(f"before any edit: {clean.strip().splitlines()[-1]}")
        print("| edited | `dvc status`: must re-run | `dvc repro --dry`: may re-run |")
        print("|---|---|---|")
        for label, path in EDITS.items():
            changed, dry = stages_for(clone, path)
            print(f"| {label} (`{path}`) | {', '.join(changed)} | {', '.join(dry)} |")


if __name__ == "__main__":
    main()
