"""The stream runner end to end through moto's HTTP server: a real stream, the handler's code, a
crash mid-stream and a restart from the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ddb_backup.aws.clients import make_client
from ddb_backup.capture.batch_response import capture_handler
from ddb_backup.capture.stream_checkpoint import Checkpoint, FileCheckpoints
from ddb_backup.capture.stream_runner import RunnerOptions, StreamRunner
from ddb_backup.cli import cli
from ddb_backup.format import version_meta as vm
from ddb_backup.handler import build_runtime
from ddb_backup.lab.demo import create_bucket, create_table
from ddb_backup.settings import Settings
from ddb_backup.store.s3 import S3Store

pytestmark = pytest.mark.e2e


class Crash(Exception):
    """The process dies: after the handler wrote a batch, before the checkpoint of it was saved."""


class CrashingCheckpoints(FileCheckpoints):
    def __init__(self, path: Path, crash_on_save: int) -> None:
        super().__init__(path)
        self.saves, self.crash_on_save = 0, crash_on_save

    def save(self, checkpoint: Checkpoint) -> None:
        self.saves += 1
        if self.saves == self.crash_on_save:
            raise Crash
        super().save(checkpoint)


def change_items(ddb: Any, table: str, start: int, count: int) -> None:
    for n in range(start, start + count):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{n % 9}"}, "sk": {"N": "1"}, "v": {"N": str(n)}})
        if n % 5 == 4:
            ddb.delete_item(TableName=table, Key={"pk": {"S": f"k{(n + 3) % 9}"}, "sk": {"N": "1"}})


def event_ids_in(store: S3Store, prefix: str) -> list[str]:
    ids = []
    for row in store.list_versions(prefix):
        if not row.is_delete_marker:
            meta = vm.VersionMeta.from_s3(store.head(row.key, row.version_id).metadata)
            assert meta is not None
            ids.append(str(meta.event_id))
    return ids


def test_the_runner_survives_a_crash_mid_stream_with_nothing_lost(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a live table with a stream, changed 40 times (puts, overwrites, deletes)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    ddb, s3, streams = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
    stream_arn = create_table(ddb, "runner-live")
    create_bucket(s3, "bk-runner")
    change_items(ddb, "runner-live", 0, 40)
    runtime = build_runtime(Settings("bk-runner", "pre", plain_text=True), s3_client=s3, dynamodb_client=ddb)
    path = tmp_path / "cp.json"
    options = RunnerOptions(batch_size=7, until_idle=True)
    # WHEN the runner crashes after writing its third batch but before checkpointing it
    crashing = CrashingCheckpoints(path, crash_on_save=3)
    with pytest.raises(Crash):
        StreamRunner(streams, stream_arn, capture_handler(runtime.capture), crashing, options).run()
    saved = FileCheckpoints(path).load()
    assert saved is not None
    # AND the table changes again, and a new runner process (new capture: nothing remembered) restarts
    change_items(ddb, "runner-live", 40, 20)
    fresh = build_runtime(Settings("bk-runner", "pre", plain_text=True), s3_client=s3, dynamodb_client=ddb)
    summary = StreamRunner(streams, stream_arn, capture_handler(fresh.capture), FileCheckpoints(path), options).run()
    # THEN every stream record is in the bucket once: the crashed batch, redelivered to a process that remembers
    # nothing, is recognised by looking at each item's newest version (docs/format.md, writing rule 3)
    all_records = [r for r in read_all(streams, stream_arn)]
    store = S3Store(s3, "bk-runner")
    ids = event_ids_in(store, "pre/runner-live/")
    assert set(ids) == {r["eventID"] for r in all_records}
    twice = {event_id for event_id in ids if ids.count(event_id) > 1}
    assert twice == set()
    assert summary.records == len(all_records) - 14
    # AND every object's current version is the table's item now (deleted items have no current version)
    table = {item["pk"]["S"]: item for item in ddb.scan(TableName="runner-live")["Items"]}
    current = {}
    for row in store.list_versions("pre/runner-live/"):
        if row.is_latest and not row.is_delete_marker:
            current[row.key] = json.loads(store.get(row.key, row.version_id).body)
    assert current == {f"pre/runner-live/{pk} | 1": item for pk, item in table.items()}


def read_all(streams: Any, stream_arn: str) -> list[dict[str, Any]]:
    from ddb_backup.lab.demo import read_stream

    return read_stream(streams, stream_arn, "us-east-1")


def test_run_command_until_idle_with_a_file_checkpoint(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a table with 12 changes
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    ddb, s3, streams = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
    stream_arn = create_table(ddb, "runner-cli")
    create_bucket(s3, "bk-runner-cli")
    change_items(ddb, "runner-cli", 0, 12)
    checkpoint = str(tmp_path / "cp.json")
    args = ["run", "--bucket", "bk-runner-cli", "--table", "runner-cli", "--until-idle", "--checkpoint", checkpoint]
    # WHEN `run --until-idle` runs twice
    first = CliRunner().invoke(cli, args, catch_exceptions=False)
    second = CliRunner().invoke(cli, args, catch_exceptions=False)
    # THEN the first backs up every record (12 puts, 1 delete of an item that existed), the second none
    assert len(read_all(streams, stream_arn)) == 13
    assert first.exit_code == 0, first.output
    assert "13 records backed up" in first.output
    assert second.exit_code == 0, second.output
    assert "0 records backed up" in second.output
    assert len(event_ids_in(S3Store(s3, "bk-runner-cli"), "runner-cli/")) == 13


def test_run_refuses_a_table_without_a_stream(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    ddb = make_client("dynamodb")
    ddb.create_table(
        TableName="runner-nostream",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = CliRunner().invoke(cli, ["run", "--bucket", "b-any", "--table", "runner-nostream"])
    assert result.exit_code == 2
    assert "has no DynamoDB stream (Try: aws dynamodb update-table" in result.output


def test_run_with_a_new_checkpoint_says_where_it_starts_and_from_latest_skips_the_past(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a table with changes already made (issue 14.7)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    ddb, s3, _ = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
    create_table(ddb, "runner-from")
    create_bucket(s3, "bk-runner-from")
    change_items(ddb, "runner-from", 0, 5)
    base = ["run", "--bucket", "bk-runner-from", "--table", "runner-from", "--until-idle"]
    # WHEN a new checkpoint starts from latest, then another from the trim horizon
    latest = CliRunner().invoke(cli, [*base, "--checkpoint", str(tmp_path / "a.json"), "--from", "latest", "--json"])
    horizon = CliRunner().invoke(cli, [*base, "--checkpoint", str(tmp_path / "b.json")])
    # THEN each says where it starts; latest reads none of the past, the trim horizon all of it
    assert latest.exit_code == 0, latest.output
    assert "starts at its newest record (LATEST)" in latest.stderr
    summary = json.loads(latest.stdout)
    assert summary["records"] == 0 and summary["stopped"] == "idle"
    assert horizon.exit_code == 0, horizon.output
    assert "oldest record the stream keeps (TRIM_HORIZON" in horizon.stderr and "--from latest" in horizon.stderr
    assert "5 records backed up" in horizon.output and "stopped: every shard was idle" in horizon.output
