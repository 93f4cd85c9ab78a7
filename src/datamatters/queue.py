"""Run DVC's experiment queue to its end, with the workaround its workers need.

`dvc queue start -j N` starts N workers that take queued experiments until none is left. On DVC
3.x the workers sometimes stop while experiments are still queued, and the fix users report is
to start the queue again (treeverse/dvc#10562); at high `-j` a task can also fail without logs
(treeverse/dvc#10673). `drain` starts the workers, watches the queue, starts them again whenever
experiments wait with no worker left, and returns every task's final status, so a sweep either
finishes or names what failed.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WAITING, RUNNING = "Queued", "Running"
START_GRACE_SECONDS = 30.0  # a started worker takes a few seconds to register


@dataclass(frozen=True)
class QueueState:
    tasks: dict[str, str]  # experiment name (or task rev) -> Queued, Running, Success, Failed...
    workers: int

    @property
    def counts(self) -> Counter:
        return Counter(self.tasks.values())

    @property
    def finished(self) -> bool:
        return not (self.counts[WAITING] or self.counts[RUNNING])

    @property
    def stalled(self) -> bool:
        """Experiments wait and nothing will take them: DVC's workers are gone."""
        return bool(self.counts[WAITING]) and not self.counts[RUNNING] and not self.workers


def queue_state(root: Path) -> QueueState:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        queue = repo.experiments.celery_queue
        tasks = {task.get("name") or task["rev"][:7]: task["status"] for task in queue.status()}
        return QueueState(tasks, len(queue.worker_status()))


def drain(
    root: Path,
    workers: int,
    poll_seconds: float = 5.0,
    report: Callable[[str], None] = print,
) -> dict[str, str]:
    """Run the queue of the repository at `root` on `workers` workers until no task waits or
    runs; each task's final status."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    started_at, shown = float("-inf"), None
    while True:
        state = queue_state(root)
        if state.finished:
            return state.tasks
        if state.stalled and time.monotonic() - started_at > START_GRACE_SECONDS:
            if started_at > float("-inf"):
                report("queue: experiments wait and no worker is left; starting the workers again")
            subprocess.run(["dvc", "queue", "start", "-j", str(workers)], cwd=root, check=True)
            started_at = time.monotonic()
        summary = ", ".join(f"{n} {status.lower()}" for status, n in sorted(state.counts.items()))
        if summary != shown:
            report(f"queue: {summary}")
            shown = summary
        time.sleep(poll_seconds)
