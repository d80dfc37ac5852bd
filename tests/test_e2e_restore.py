"""End to end through moto's HTTP server: real stream records, the handler, the bucket, ``ddb-backup restore``."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builders import put, remove
from ddb_backup import handler as h
from ddb_backup.aws.clients import make_client
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.cli import cli
from ddb_backup.errors import BackupError
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.lab.demo import create_bucket, create_table, read_stream
from ddb_backup.lab.emulator import reset
from ddb_backup.lab.faults import THROTTLE, UNPROCESSED, FaultyDynamoDB
from ddb_backup.restore.execute import RestoreOptions, restore
from ddb_backup.restore.plan import TEXT
from ddb_backup.store.s3 import S3Store
from fake_dynamodb import CrashAfter

pytestmark = pytest.mark.e2e


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A moto server with nothing in it (moto's state is per process), as the default endpoint."""
    reset(moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    return moto_url


def scan_all(ddb: Any, table: str) -> list[dict[str, Any]]:
    items, args = [], {"TableName": table}
    while True:
        page = ddb.scan(**args)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["N"]))
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def shift(records: list[dict[str, Any]], to: float) -> list[dict[str, Any]]:
    """The same records, made ``to`` (epoch seconds) in whole seconds, as AWS stamps them."""
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = float(int(to))
    return records


def hand_to_handler(records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    monkeypatch.setenv("BackupBucket", bucket)
    h.reset_runtime()
    try:
        assert h.handler({"Records": records}, None) == {"batchItemFailures": []}
    finally:
        h.reset_runtime()


def run_cli(url: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["restore", "--endpoint-url", url, *args], catch_exceptions=False)
    return result


def test_changes_made_before_t_but_backed_up_after_t_are_restored(
    moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a live table with a stream, and two groups of changes read from the real stream
    monkeypatch.chdir(tmp_path)
    ddb, s3, streams = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
    arn = create_table(ddb, "shop")
    create_bucket(s3, "bk-restore")
    ddb.put_item(TableName="shop", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "a1"}})
    ddb.put_item(TableName="shop", Item={"pk": {"S": "b"}, "sk": {"N": "1"}, "v": {"S": "b1"}})
    ddb.put_item(TableName="shop", Item={"pk": {"S": "c"}, "sk": {"N": "2"}, "bin": {"B": b"\x00\xff"}})
    ddb.put_item(TableName="shop", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "a2"}})
    ddb.delete_item(TableName="shop", Key={"pk": {"S": "b"}, "sk": {"N": "1"}})
    first = read_stream(streams, arn, os.environ["AWS_DEFAULT_REGION"])
    ddb.put_item(TableName="shop", Item={"pk": {"S": "c"}, "sk": {"N": "2"}, "v": {"S": "c2"}})
    ddb.delete_item(TableName="shop", Key={"pk": {"S": "a"}, "sk": {"N": "1"}})
    ddb.put_item(TableName="shop", Item={"pk": {"S": "d"}, "sk": {"N": "1"}, "v": {"S": "d1"}})
    second = read_stream(streams, arn, os.environ["AWS_DEFAULT_REGION"])[len(first) :]
    # ... made 20 and 10 minutes ago, but handed to the handler only now (Lambda lag):
    now = time.time()
    hand_to_handler(shift(first, now - 1200) + shift(second, now - 600), monkeypatch, "bk-restore")
    at = epoch_to_iso(now - 900)
    common = ["--bucket", "bk-restore", "--table", "shop", "--at", at, "--to-table", "restored"]
    # WHEN a dry run, then the restore, are asked for the state 15 minutes ago
    planned = run_cli(moto, *common, "--dry-run")
    result = run_cli(moto, *common)
    # THEN the plan and the summary count the two items present, found by reading metadata
    assert planned.exit_code == 0, planned.output
    assert "would put: 2" in planned.output and planned.output.count("read shop/") == 2
    assert result.exit_code == 0, result.output
    assert "put: 2" in result.output and "skipped (absent at TIME): 2" in result.output
    assert "metadata reads: 0" not in result.output
    # ... and the table is the state of 15 minutes ago, though S3 received every version after it
    assert scan_all(ddb, "restored") == [
        {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "a2"}},
        {"pk": {"S": "c"}, "sk": {"N": "2"}, "bin": {"B": b"\x00\xff"}},
    ]
    # ... while the live table (what S3's clock alone would give) is the later state
    assert [item["pk"]["S"] for item in scan_all(ddb, "shop")] == ["c", "d"]
    assert not list(tmp_path.glob("ddb-backup-restore-*"))


def backed_up_items(s3: Any, count: int, at: float) -> S3Store:
    """``count`` items (and a few removals) backed up through the capture code into bucket ``bk``."""
    create_bucket(s3, "bk-restore")
    store = S3Store(s3, "bk-restore")
    capture = Capture(store, CaptureSettings(workers=16))
    records = [
        put({"pk": {"S": f"item{n:03d}"}, "sk": {"N": str(n)}}, {"v": {"N": str(n)}}, at=at) for n in range(count)
    ]
    records += [remove({"pk": {"S": f"item{n:03d}"}, "sk": {"N": str(n)}}, at=at + 1) for n in range(0, count, 10)]
    assert capture.process(records).failures == []
    return store


def source_table(ddb: Any, name: str = "orders") -> None:
    """The backed-up items' live source table (``pk`` S, ``sk`` N), without a stream."""
    create_table(ddb, name, stream=False)


def test_a_crash_mid_restore_then_resume_gives_the_same_table(
    moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN 60 items backed up (6 of them removed), and their live source table
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    store = backed_up_items(s3, 60, time.time() - 100)
    source_table(ddb)
    now = float(int(time.time()))
    at, checkpoint = epoch_to_iso(now), tmp_path / "restore.json"
    # WHEN a restore dies after a few batches
    options = RestoreOptions(
        bucket="bk-restore",
        source="orders",
        target="restored",
        at=now,
        checkpoint=checkpoint,
        scheme=TEXT,
        batch_size=4,
    )
    with pytest.raises(BackupError, match="--resume"):
        restore(options, store, CrashAfter(ddb, 6))
    partial = len(scan_all(ddb, "restored"))
    # ... and the same command is run again with --resume
    common = ["--bucket", "bk-restore", "--table", "orders", "--at", at, "--checkpoint", str(checkpoint)]
    resumed = run_cli(moto, *common, "--to-table", "restored", "--resume")
    clean = run_cli(moto, *common, "--to-table", "clean", "--checkpoint", str(tmp_path / "clean.json"))
    # THEN it finishes from the checkpoint, and the table equals a restore that never crashed
    assert 0 < partial < 54
    assert resumed.exit_code == 0, resumed.output
    assert clean.exit_code == 0, clean.output
    assert "done before this run" in resumed.output and "(0 done before this run)" not in resumed.output
    assert len(scan_all(ddb, "clean")) == 54
    assert scan_all(ddb, "restored") == scan_all(ddb, "clean")
    assert not checkpoint.exists()


def test_throttling_and_unprocessed_items_lose_nothing(
    moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN 150 items backed up, and a DynamoDB that throttles and leaves items unprocessed
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    store = backed_up_items(s3, 150, time.time() - 100)
    source_table(ddb)
    throttling = FaultyDynamoDB(ddb, throttle_rate=0.25, unprocessed_rate=0.25, seed=7)
    options = RestoreOptions(
        bucket="bk-restore",
        source="orders",
        target="restored",
        at=time.time(),
        checkpoint=tmp_path / "c.json",
        workers=8,
        batch_size=5,  # about 30 batches: both kinds of fault are all but certain to come up
    )
    # WHEN the restore runs against it
    summary = restore(options, store, throttling)
    # THEN every item present at T is in the table, and the faults did happen and were retried
    assert throttling.dice.counts[THROTTLE] > 0 and throttling.dice.counts[UNPROCESSED] > 0
    assert summary.throttled == throttling.dice.counts[THROTTLE] and summary.retries > 0
    assert summary.puts == 135 == len(scan_all(ddb, "restored"))
