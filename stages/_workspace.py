"""Put this workspace's `src/` first on the import path; every stage script imports this first.

`dvc exp run --queue` and `--temp` run stages in a copy of the repository under `.dvc/tmp/exps`.
With the package installed in editable mode, Python would import it from the main checkout, so
an experiment could run code other than the code DVC hashed as its dependencies.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
if sys.path[:1] != [SRC]:
    sys.path.insert(0, SRC)
