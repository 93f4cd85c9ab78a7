"""Metric names: statistic, features and sample count (`fid_judge_1k`), as NVIDIA's name theirs.

A name fixes its protocol, so a table only ever compares like with like.
"""

from __future__ import annotations


def sample_tag(count: int) -> str:
    """1000 -> '1k', 2500 -> '2.5k', 500 -> '500'."""
    return f"{count / 1000:g}k" if count >= 1000 else str(count)
