"""Labels as the training stages see them: given labels carried through, with provenance.

The columns `given_label`, `label_source` and `label_issue` exist now so that the label audit
(which may relabel or drop rows) changes what they hold, not the data contract.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from datamatters.data.contract import StageData
from datamatters.stage import StageError


def carry_labels(data: StageData, classes: Sequence[str] | None, source_path: str) -> StageData:
    manifest = data.manifest.copy()
    labels = manifest["label"].astype("string")
    if classes is not None:
        unknown = sorted(set(labels.dropna()) - {str(c) for c in classes})
        if unknown:
            raise StageError(
                "labeling",
                source_path,
                f"labels not in labeling.classes: {unknown[:10]}",
                "add them to labeling.classes, or set labeling.classes=null "
                "to accept the classes found in the data",
            )
    manifest["given_label"] = labels
    manifest["label"] = labels
    manifest["label_source"] = pd.Series(pd.NA, index=manifest.index, dtype="string").mask(
        labels.notna(), "given"
    )
    manifest["label_issue"] = False
    return StageData(data.images, manifest)


def label_report(manifest: pd.DataFrame) -> dict:
    kept = manifest[manifest["keep"]]
    counts = kept["label"].value_counts(dropna=True).sort_index()
    return {
        "kept_labeled": int(kept["label"].notna().sum()),
        "kept_unlabeled": int(kept["label"].isna().sum()),
        "label_issues": int(manifest["label_issue"].sum()),
        "kept_per_class": {str(k): int(v) for k, v in counts.items()},
    }
