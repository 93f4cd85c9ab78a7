"""The queue watcher's reading of DVC's queue: when it is done, when its workers are gone.

The whole path, DVC's real queue with two workers, runs in tests/test_sharing.py.
"""

from __future__ import annotations

import pytest

from datamatters.queue import QueueState, drain


def test_a_queue_with_waiting_tasks_and_no_worker_is_stalled():
    stalled = QueueState({"q-1": "Success", "q-2": "Queued"}, workers=0)
    assert stalled.stalled and not stalled.finished


def test_a_queue_with_a_worker_or_a_running_task_is_not_stalled():
    assert not QueueState({"q-1": "Running", "q-2": "Queued"}, workers=0).stalled
    assert not QueueState({"q-1": "Queued"}, workers=1).stalled


def test_a_queue_is_finished_when_nothing_waits_or_runs():
    assert QueueState({"q-1": "Success", "q-2": "Failed"}, workers=1).finished
    assert QueueState({}, workers=0).finished
    assert not QueueState({"q-1": "Running"}, workers=1).finished


def test_drain_needs_a_worker(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        drain(tmp_path, workers=0)
