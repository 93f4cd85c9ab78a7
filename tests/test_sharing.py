"""Where a team's results live: an S3 remote, experiments across clones, the queue, a full disk.

Real components throughout: git with a bare `origin`, DVC, and an S3-compatible server process on
localhost (moto's server mode; the one stand-in, for a cloud bucket that cannot exist here). Each
test works in its own clone of the project after one real `dvc repro` at toy scale.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import TINY, command_env, sh, stages_run
from datamatters.data.contract import read_stage_data

pytestmark = pytest.mark.slow

BUCKET = "datamatters"
CREDENTIALS = {  # moto accepts any; a real remote reads them from the same variables
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# moto's server, optionally made to die on the upload after the first `uploads`: the process exits
# as that request arrives, so a push fails at the same point every run (killing it from the test
# raced a push that could finish before the kill landed).
SERVER = """
import os, sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)

port, uploads = int(sys.argv[1]), int(sys.argv[2])
app = DomainDispatcherApplication(create_backend_app)
seen = 0

def dying(environ, start_response):
    global seen
    if environ["REQUEST_METHOD"] == "PUT" and environ["PATH_INFO"].count("/") > 1:
        seen += 1
        if 0 <= uploads < seen:
            os._exit(1)
    return app(environ, start_response)

run_simple("127.0.0.1", port, dying, threaded=True, request_handler=MotoRequestHandler)
"""


class S3Server:
    """moto's S3-compatible server as its own process, so that it can die mid-transfer."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, uploads: int = -1) -> S3Server:
        """Serve an empty bucket; with `uploads` >= 0 the server exits on the upload after that
        many objects."""
        command = [sys.executable, "-c", SERVER, str(self.port), str(uploads)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"the S3 server on {self.url} did not start")
        self.client().create_bucket(Bucket=BUCKET)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
        if self.process:
            self.process.wait()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, **_boto_credentials())

    def object_count(self) -> int:
        return self.client().list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module", autouse=True)
def credentials():
    """Credentials come from the environment, as the docs tell users: never from git."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        yield


@pytest.fixture
def s3():
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def origin(reproduced) -> Path:
    """A bare git `origin` holding the project after a real `dvc repro`, its data pushed to the
    project's default DVC remote (a folder beside the clones)."""
    return reproduced.origin


def clone(origin: Path, name: str, pull: bool = True) -> Path:
    """A teammate's checkout: git clone of `origin`, its data pulled from the DVC remote."""
    target = origin.parent / name
    sh(origin.parent, "git", "clone", "-q", str(origin), name)
    if pull:
        sh(target, "dvc", "pull")
    return target


def add_s3_remote(repo: Path, server: S3Server, name: str = "s3") -> None:
    """The docs' recipe: the bucket and endpoint in .dvc/config, credentials from the env."""
    sh(repo, "dvc", "remote", "add", name, f"s3://{BUCKET}/store")
    sh(repo, "dvc", "remote", "modify", name, "endpointurl", server.url)


def exp_run(repo: Path, name: str, *overrides: str) -> str:
    settings = [*TINY, "eval.metrics.inception_samples=0", *overrides]
    return sh(repo, "dvc", "exp", "run", "-n", name, *(a for s in settings for a in ("-S", s)))


def exp_metrics(repo: Path) -> dict[str, dict]:
    """Each experiment's evaluate metrics, by name, from `dvc exp show --json`."""
    shown = json.loads(sh(repo, "dvc", "exp", "show", "--json", "--no-fetch"))
    found = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev.get("data") or {}
                metrics = data.get("metrics", {}).get("metrics/evaluate.json", {}).get("data")
                if rev.get("name") and metrics:
                    found[rev["name"]] = metrics
    return found


def test_s3_remote_round_trip(origin, s3):
    """Push to S3, clone fresh, pull from S3: every output back and `dvc status` clean."""
    team = clone(origin, "s3-pusher")
    add_s3_remote(team, s3)
    sh(team, "git", "commit", "-qam", "an S3 remote")
    sh(team, "git", "push", "-q", "origin", "HEAD")
    sh(team, "dvc", "push", "-r", "s3")
    assert s3.object_count() > 0
    assert "in sync" in sh(team, "dvc", "status", "-c", "-r", "s3")
    usage = sh(team, "datamatters", "disk")
    (line,) = [line for line in usage.splitlines() if line.startswith("remote 's3'")]
    assert float(line.split()[2]) > 0, usage

    fresh = clone(origin, "s3-puller", pull=False)
    sh(fresh, "dvc", "pull", "-r", "s3")
    assert "Data and pipelines are up to date" in sh(fresh, "dvc", "status")
    for output in ("models/generator.pt", "data/augmented/images/000000.npy"):
        assert (fresh / output).read_bytes() == (team / output).read_bytes(), output


def test_push_to_a_server_that_dies_midway_fails_then_completes(origin):
    """The server dies while `dvc push` uploads; the push says so, and a second push to the
    server once it is back (moto keeps no state: an empty bucket) completes."""
    team = clone(origin, "dead-remote")
    s3 = S3Server().start(uploads=3)
    try:
        add_s3_remote(team, s3, "flaky")
        push = subprocess.run(
            ["dvc", "push", "-r", "flaky", "-j", "1"],
            cwd=team,
            env=command_env() | {"AWS_MAX_ATTEMPTS": "1"},  # no retrying the dead server
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = push.stdout + push.stderr
        assert s3.process.wait(timeout=60) == 1, f"the server saw no fourth upload:\n{output}"
        assert push.returncode != 0, output
        assert "Could not connect to the endpoint URL" in output and s3.url in output, output

        s3.start()
        sh(team, "dvc", "push", "-r", "flaky")
        assert "in sync" in sh(team, "dvc", "status", "-c", "-r", "flaky")
    finally:
        s3.stop()


def test_a_sweep_run_on_two_clones_is_traced_the_same_on_a_third(origin):
    """Two teammates each run one experiment of the set `sweep` and `dvc exp push` it; a third
    clone pulls both and traces them (the same report as where the experiments ran), follows the
    lineage both ways and diffs their plots."""
    first, second = clone(origin, "sweeper-1"), clone(origin, "sweeper-2")
    exp_run(first, "sweep-1", "filters=none")
    exp_run(second, "sweep-2", "train.seed=1")
    sh(first, "dvc", "exp", "push", "origin", "sweep-1")
    sh(second, "dvc", "exp", "push", "origin", "sweep-2")

    sh(second, "dvc", "exp", "pull", "origin", "sweep-1")
    reader = clone(origin, "reader", pull=False)  # `dvc exp pull` fetches what it needs
    sh(reader, "dvc", "exp", "pull", "origin")  # as docs/scaling.md says: all of this commit's
    for repo in (second, reader):
        sh(repo, "datamatters", "trace", "sweep", "--out", "reports")
    report = (reader / "reports" / "trace.md").read_text()
    assert report == (second / "reports" / "trace.md").read_text()
    assert "| sweep-1 |" in report and "| sweep-2 |" in report
    assert "the floor no model is expected to beat: `fid_judge_100`" in report
    rev = sh(second, "git", "for-each-ref", "--format=%(objectname)", "refs/exps/*/*/sweep-2")
    lock = yaml.safe_load(sh(second, "git", "show", f"{rev.strip()}:dvc.lock"))
    outs = lock["stages"]["augment"]["outs"]
    (augmented,) = [out["md5"] for out in outs if out["path"] == "data/augmented"]
    assert f"`{augmented[:12]}`" in report, "the md5s come from the pushed dvc.lock"

    lineage = sh(reader, "datamatters", "lineage", "sweep-2")  # its data came by `dvc exp pull`
    removed = (reader / "reports" / "lineage" / "sweep-2-removed.csv").read_text().splitlines()
    assert augmented in lineage and len(removed) > 1, lineage
    assert removed[0].startswith("id,source,label,issues")
    assert "sweep-2" in sh(reader, "datamatters", "used-by", augmented[:10])
    diff = sh(reader, "dvc", "plots", "diff", "sweep-1", "sweep-2", "--json")
    plots = json.loads(diff)["data"]
    revisions = {rev for image in plots["plots/samples.png"] for rev in image["revisions"]}
    assert revisions == {"sweep-1", "sweep-2"}
    (curve,) = plots["metrics/train/plots/metrics/fid_judge_50.tsv"]
    assert set(curve["revisions"]) == {"sweep-1", "sweep-2"}


def test_the_queue_with_two_workers_matches_each_experiment_run_alone(origin, monkeypatch):
    """Four queued experiments on two workers (`datamatters queue -j 2`: `dvc queue start -j 2`,
    watched): all finish, each with the metrics of the same experiment run alone (one thread
    each both times)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the queue's workers inherit it
    team = clone(origin, "queue")
    seeds = "0,1,2,3"
    settings = [*TINY, "eval.metrics.inception_samples=0", f"train.seed={seeds}"]
    sh(team, "dvc", "exp", "run", "--queue", "-n", "q", *(a for s in settings for a in ("-S", s)))
    drained = sh(team, "datamatters", "queue", "-j", "2", "--poll", "2")
    assert drained.count("Success") == 4, drained
    queued = exp_metrics(team)
    for seed in range(4):
        exp_run(team, f"alone-{seed}", f"train.seed={seed}")
    alone = exp_metrics(team)
    for seed in range(4):
        assert queued[f"q-{seed + 1}"] == alone[f"alone-{seed}"], seed


def test_a_full_disk_fails_naming_the_path_and_the_next_repro_completes(origin):
    """`data/` on a 256 KiB tmpfs: ingest's outputs do not fit. The stage names the path and the
    fix and leaves no partial output; with the space back, `dvc repro` completes."""
    team = clone(origin, "full-disk", pull=False)
    data = team / "data"
    data.mkdir(exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(data)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        failed = subprocess.run(
            ["dvc", "repro", "ingest"], cwd=team, env=command_env(), capture_output=True, text=True
        )
        message = failed.stdout + failed.stderr
        assert failed.returncode != 0
        assert "[ingest]" in message and "no space left on the device" in message, message
        assert "df -h" in message and "dvc repro" in message, message
        leftovers = sorted(p.name for p in data.iterdir())
        assert not any(name.endswith(".tmp") for name in leftovers), leftovers
        for output in data.iterdir():  # an output that was written is whole
            read_stage_data(output)
        assert "changed outs" in sh(team, "dvc", "status", "ingest"), "DVC will run it again"
        subprocess.run(["mount", "-o", "remount,size=64m", str(data)], check=True)
        assert "ingest" in stages_run(sh(team, "dvc", "repro", "ingest"))
        assert "ingest" not in sh(team, "dvc", "status", "ingest")
    finally:
        subprocess.run(["umount", str(data)], check=False)
