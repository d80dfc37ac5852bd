"""Restore over worker processes, end to end through moto's HTTP server (in-process mocks do not cross
processes): the same table as one process, an interrupted run that resumes exactly, ``--sync``.

GIVEN items backed up into a bucket on moto's server, cut into the plain-text scheme's 95 key ranges,
WHEN a restore spreads its writes over two worker processes (each with its own clients), THEN the
target, the summary, the checkpoint and the rejects behave as the one-process restore's do.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ddb_backup.aws.clients import make_client
from ddb_backup.cli.common import Aws
from ddb_backup.cli.restore import WorkerClients
from ddb_backup.errors import BackupError
from ddb_backup.lab.emulator import reset
from ddb_backup.restore import processes, worker
from ddb_backup.restore.execute import RestoreInterrupted, RestoreOptions, RestoreSummary, restore
from ddb_backup.restore.plan import TEXT
from ddb_backup.restore.processes import process_count
from test_e2e_restore import CrashAfter, backed_up_items, scan_all, source_table
from test_e2e_restore_cli import wait_for_writes

pytestmark = pytest.mark.e2e
ITEMS = 30  # every 10th removed: 27 present at TIME


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    reset(moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)  # the worker processes inherit it
    return moto_url


def options(tmp_path: Path, target: str, **changes: Any) -> RestoreOptions:
    fields: dict[str, Any] = {
        "bucket": "bk-restore",
        "source": "orders",
        "target": target,
        "at": time.time(),
        "checkpoint": tmp_path / f"{target}.json",
        "scheme": TEXT,  # 95 key ranges, though the table is small
        "workers": 4,
        "processes": 2,
    }
    return RestoreOptions(**{**fields, **changes})


def run(moto: str, opts: RestoreOptions, **kw: Any) -> RestoreSummary:
    aws = Aws(endpoint_url=moto)
    clients = WorkerClients(aws, opts.bucket, opts.workers)
    store, dynamodb = clients()
    return restore(opts, store, dynamodb, connect=clients, **kw)


def test_two_processes_restore_exactly_what_one_process_restores(moto: str, tmp_path: Path) -> None:
    ddb = make_client("dynamodb")
    backed_up_items(make_client("s3"), ITEMS, time.time() - 100)
    source_table(ddb)
    at = time.time()
    one = run(moto, options(tmp_path, "one", at=at, processes=1))
    two = run(moto, options(tmp_path, "two", at=at))
    assert scan_all(ddb, "two") == scan_all(ddb, "one") and len(scan_all(ddb, "one")) == 27
    for name in ("items", "puts", "skipped", "image_reads", "ranges", "rejected", "deletes"):
        assert getattr(two, name) == getattr(one, name), name
    assert two.warnings == one.warnings
    assert (one.processes, two.processes) == (1, 2)  # the writes did go through two worker processes
    assert not (tmp_path / "two.json").exists()


def test_an_interrupted_process_restore_keeps_its_checkpoint_and_resumes_exactly(moto: str, tmp_path: Path) -> None:
    ddb = make_client("dynamodb")
    backed_up_items(make_client("s3"), ITEMS, time.time() - 100)
    source_table(ddb)
    stop = threading.Event()

    def stop_once_written(summary: RestoreSummary) -> None:
        if summary.puts > 0:
            stop.set()  # what the first Ctrl-C does

    # WHEN a slow restore (2 items/s over both processes) is stopped once some items are written
    slow = options(tmp_path, "copy", write_rate=2.0, batch_size=1)
    with pytest.raises(RestoreInterrupted):
        run(moto, slow, progress=stop_once_written, stop=stop)
    # THEN it stopped long before the end, and the checkpoint says which ranges are done
    partial = len(scan_all(ddb, "copy"))
    assert 0 < partial < 27
    assert (tmp_path / "copy.json").exists()
    # WHEN the same restore runs again with resume, THEN the table is exactly the state at TIME
    resumed = run(moto, options(tmp_path, "copy", at=slow.at, resume=True))
    assert resumed.ranges_already_done > 0
    assert sorted(item["pk"]["S"] for item in scan_all(ddb, "copy")) == [f"item{n:03d}" for n in range(ITEMS) if n % 10]
    assert not (tmp_path / "copy.json").exists()


def test_sync_on_the_process_path_deletes_only_what_was_absent_at_t(moto: str, tmp_path: Path) -> None:
    ddb = make_client("dynamodb")
    backed_up_items(make_client("s3"), ITEMS, time.time() - 100)
    source_table(ddb)
    source_table(ddb, "copy")
    ddb.put_item(TableName="copy", Item={"pk": {"S": "extra"}, "sk": {"N": "1"}})
    ddb.put_item(TableName="copy", Item={"pk": {"S": "item000"}, "sk": {"N": "0"}})  # removed at TIME
    summary = run(moto, options(tmp_path, "copy", overwrite=True, sync=True))
    assert (summary.puts, summary.deletes) == (27, 2)
    assert sorted(item["pk"]["S"] for item in scan_all(ddb, "copy")) == [f"item{n:03d}" for n in range(ITEMS) if n % 10]


def test_how_many_processes() -> None:
    clients = WorkerClients(Aws(), "b", 4)
    base = RestoreOptions(bucket="b", source="s", target="t", at=0.0)
    assert process_count(base, 95, clients) == 1  # the library's default: one process
    assert process_count(RestoreOptions(**{**base.__dict__, "processes": 0}), 95, clients) >= 1
    assert process_count(RestoreOptions(**{**base.__dict__, "processes": 4}), 24, clients) == 3
    assert process_count(RestoreOptions(**{**base.__dict__, "processes": 4}), 7, clients) == 1  # a few --key items
    assert process_count(RestoreOptions(**{**base.__dict__, "processes": 4}), 95, None) == 1
    assert process_count(RestoreOptions(**{**base.__dict__, "processes": 4, "dry_run": True}), 95, clients) == 1


def test_processes_zero_means_two_per_usable_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process's threads share one interpreter lock (issue 16): 0 asks for two per core it may run on."""
    clients = WorkerClients(Aws(), "b", 4)
    automatic = RestoreOptions(bucket="b", source="s", target="t", at=0.0, processes=0)
    monkeypatch.setattr(processes, "usable_cores", lambda: 2)
    assert process_count(automatic, 256, clients) == 4
    assert process_count(automatic, 17, clients) == 2  # still at most one per 8 pending ranges
    monkeypatch.setattr(processes, "usable_cores", lambda: 1)
    assert process_count(automatic, 256, clients) == 2
    assert processes.usable_cores() == 1


def test_a_worker_collects_garbage_rarely_and_not_what_it_had_built() -> None:
    """The worker's collector settings (issue 16: 6-9% of a worker's CPU went to Python's defaults)."""
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    try:
        worker.quiet_collector()
        assert gc.get_threshold() == worker.GC_THRESHOLDS
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_ctrl_c_to_the_whole_group_stops_every_process_and_resume_finishes_exactly(tmp_path: Path) -> None:
    # GIVEN the CLI restoring 1,500 items (256 key ranges, so two worker processes) from the HTTP fake
    # endpoint (benchmarks.http_fake: its own process, real clients), slowed to 100 writes a second
    from benchmarks.http_fake import check, fake_endpoint
    from benchmarks.restore_bench import saved_schema
    from benchmarks.synthetic import History
    from ddb_backup.format.version_meta import epoch_to_iso

    history = History(items=1500, versions=5)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONUNBUFFERED": "1",
    }
    checkpoint = tmp_path / "cp.json"
    with fake_endpoint(0.005, history, extra=saved_schema(history)) as url:
        args = [sys.executable, "-c", "from ddb_backup.cli import main; main()", "restore", "--endpoint-url", url]
        args += ["--bucket", "bench", "--prefix", "bench", "--table", "orders", "--at", epoch_to_iso(history.at)]
        args += ["--to-table", "copy", "--checkpoint", str(checkpoint), "--processes", "2"]
        process = subprocess.Popen(
            [*args, "--write-rate", "100"], stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        wait_for_writes(process)
        # WHEN Ctrl-C reaches every process of the group, as a terminal sends it
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
        # THEN it ends with 130 and a resume hint, the checkpoint kept, long before every item is written
        assert process.returncode == 130, err
        assert "--resume" in err and "Traceback" not in err, err
        assert checkpoint.exists() and check(url, "copy")["items"] < 1500
        # WHEN the same command runs again with --resume, THEN the table is exactly the state at TIME
        resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=env, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert "processes: 2" in resumed.stdout and "(0 done before this run)" not in resumed.stdout
        assert check(url, "copy") == {"items": 1500, "wrong": 0}
        assert not checkpoint.exists()


def test_an_item_the_target_refuses_reaches_the_rejects_file_from_a_worker(moto: str, tmp_path: Path) -> None:
    # GIVEN a backup holding one item with an empty email, and a target whose index on email refuses it
    ddb = make_client("dynamodb")
    store = backed_up_items(make_client("s3"), ITEMS, time.time() - 100)
    image_key = next(v.key for v in store.list_versions("orders/") if not v.is_delete_marker)
    current = json.loads(store.get(image_key).body)
    store.put(image_key, json.dumps({**current, "email": {"S": ""}}).encode(), store.head(image_key).metadata)
    source_table(ddb)
    ddb.create_table(
        TableName="copy",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind} for name, kind in (("pk", "S"), ("sk", "N"), ("email", "S"))
        ],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-email",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    # WHEN it is restored over two processes, THEN the worker's reject reaches the parent's rejects file
    summary = run(moto, options(tmp_path, "copy", overwrite=True))
    assert (summary.processes, summary.rejected, summary.puts) == (2, 1, 26)
    assert summary.rejects_path is not None
    (line,) = [json.loads(text) for text in summary.rejects_path.read_text().splitlines()]
    assert line["Item"]["email"] == {"S": ""} and "IndexKey: email" in line["reason"]
    assert len(scan_all(ddb, "copy")) == 26


@dataclass(frozen=True)
class CrashingClients:
    """A worker's clients whose DynamoDB dies on its ``after``-th BatchWriteItem (picklable)."""

    clients: WorkerClients
    after: int

    def __call__(self) -> tuple[Any, Any]:
        store, dynamodb = self.clients()
        return store, CrashAfter(dynamodb, self.after)


def test_a_worker_that_fails_ends_the_restore_resumably_and_resume_gives_the_same_table(
    moto: str, tmp_path: Path
) -> None:
    ddb = make_client("dynamodb")
    backed_up_items(make_client("s3"), ITEMS, time.time() - 100)
    source_table(ddb)
    opts = options(tmp_path, "copy", batch_size=2)
    clients = WorkerClients(Aws(endpoint_url=moto), opts.bucket, opts.workers)
    store, dynamodb = clients()
    # WHEN a worker's DynamoDB fails for good after a few batches
    with pytest.raises(BackupError) as failed:
        restore(opts, store, dynamodb, connect=CrashingClients(clients, 3))
    # THEN the restore ends with the worker's error and a resume hint, the checkpoint kept
    assert "crash" in str(failed.value) and "--resume" in failed.value.hint
    assert (tmp_path / "copy.json").exists() and len(scan_all(ddb, "copy")) < 27
    # WHEN it is resumed with working clients, THEN the table is exactly the state at TIME
    run(moto, options(tmp_path, "copy", at=opts.at, resume=True))
    assert sorted(item["pk"]["S"] for item in scan_all(ddb, "copy")) == [f"item{n:03d}" for n in range(ITEMS) if n % 10]
