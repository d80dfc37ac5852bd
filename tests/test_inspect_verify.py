"""``verify``: the live table against the backup's newest state, allowing for changes in flight."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from builders import put
from ddb_backup.aws.ratelimit import TokenBucket
from ddb_backup.cli import cli
from ddb_backup.format import keys as k
from ddb_backup.inspect.verify import VerifyOptions, uses_plain_text_names, verify_table
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.s3 import S3Store
from inspect_support import BUCKET, SCHEMA, backed_up, create_table, versioned_bucket

ITEMS = {
    "a": {"n": {"N": "1.50"}, "bin": {"B": b"\x00\x01"}, "tags": {"SS": ["y", "x"]}},
    "b": {"m": {"M": {"deep": {"L": [{"N": "1"}, {"BOOL": True}]}}}},
    "c": {"s": {"S": "three"}},
}


def stream_image(name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """The image as a stream record carries it: binary as base64 text, set order as DynamoDB keeps it."""
    from ddb_backup.inspect.images import to_json_image

    return to_json_image({"pk": {"S": name}, **attrs})


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(ddb)
        yield ddb, versioned_bucket()


def fill(ddb: Any, store: Any, *, at: float, **settings: Any) -> None:
    """The table's items, and the backup of each (captured as the function does)."""
    for name, attrs in ITEMS.items():
        ddb.put_item(TableName="orders", Item={"pk": {"S": name}, **attrs})
    records = [put({"pk": {"S": n}}, {**stream_image(n, a)}, at=at) for n, a in ITEMS.items()]
    backed_up(store, records, **settings)


def run_verify(*extra: str) -> Any:
    return CliRunner().invoke(cli, ["verify", "--bucket", BUCKET, "--table", "orders", "--grace", "0s", *extra])


def test_verify_finds_drift_both_ways_and_exits_1_with_a_hint(aws: tuple[Any, Any]) -> None:
    ddb, s3 = aws
    # GIVEN a table and its plain-text backup, in sync (numbers, binaries, sets spelled differently)
    fill(ddb, S3Store(s3, BUCKET), at=time.time() - 600, plain_text=True)
    in_sync = run_verify()
    assert in_sync.exit_code == 0, in_sync.output
    assert "in sync" in in_sync.output and "3 match" in in_sync.output
    # WHEN the table changes without the backup seeing it (a missed change, a new item), and the
    # table loses an item the backup still holds
    ddb.put_item(TableName="orders", Item={"pk": {"S": "b"}, "m": {"S": "changed"}})
    ddb.put_item(TableName="orders", Item={"pk": {"S": "d"}})
    ddb.delete_item(TableName="orders", Key={"pk": {"S": "c"}})
    result = run_verify("--json")
    # THEN every difference is drift, exit 1, and the hint names what to do
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["drift"] == {"missing": 1, "extra": 1, "differs": 1}
    kinds = {d["key"]["pk"]["S"]: d["kind"] for d in data["differences"]}
    assert kinds == {"b": "differs", "c": "extra", "d": "missing"}
    assert "full-backup" in result.stderr


def _live_options(**kw: Any) -> VerifyOptions:
    return VerifyOptions(prefix="", table="orders", schema=SCHEMA, **kw)


def test_a_change_the_backup_catches_up_with_during_the_grace_period_is_in_flight(aws: tuple[Any, Any]) -> None:
    ddb, _ = aws
    store = MemoryStore()
    fill(ddb, store, at=time.time() - 3600)
    # GIVEN the table just changed; the function writes it to the backup a few seconds later
    ddb.put_item(TableName="orders", Item={"pk": {"S": "c"}, "s": {"S": "four"}})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        backed_up(store, [put({"pk": {"S": "c"}}, {"s": {"S": "four"}}, first=False, at=time.time() - 1)])

    # WHEN verify runs with a grace period
    report = verify_table(store, ddb, _live_options(grace=30), sleep=sleep)
    # THEN the difference is read again after the grace period and is in flight, not drift
    assert report.in_sync and len(report.in_flight) == 1 and not report.drift
    assert len(waits) == 1 and 25 < waits[0] <= 30
    assert report.in_flight[0].reason.startswith("in flight")


def test_a_backup_change_younger_than_the_grace_period_is_in_flight(aws: tuple[Any, Any]) -> None:
    ddb, _ = aws
    store = MemoryStore()
    fill(ddb, store, at=time.time() - 3600)
    # GIVEN the backup's newest version of c is seconds old and the table does not show it yet
    backed_up(store, [put({"pk": {"S": "c"}}, {"s": {"S": "later"}}, first=False, at=time.time() - 2)])
    report = verify_table(store, ddb, _live_options(grace=60), sleep=lambda _: None)
    assert report.in_sync and [d.kind for d in report.in_flight] == ["differs"]
    # and without a grace period it is drift
    assert not verify_table(store, ddb, _live_options(grace=0), sleep=lambda _: None).in_sync


def test_the_scan_spends_read_capacity_through_the_token_bucket(aws: tuple[Any, Any]) -> None:
    ddb, _ = aws
    store = MemoryStore()
    fill(ddb, store, at=time.time() - 3600)
    slept = [0.0]

    def sleep(seconds: float) -> None:
        slept[0] += seconds

    options = _live_options(read_rate=1, segments=1, grace=0)
    start = time.time()  # the clock moves only by the sleeps: no real time (a loaded machine) counted
    report = verify_table(store, ddb, options, clock=lambda: start + slept[0], sleep=sleep)
    # THEN three pages of one unit at one unit a second, one saved up: the third page waited about a second
    assert report.in_sync and report.read_capacity == 3
    assert 0.5 < slept[0] <= 1.0


def test_token_bucket_waits_off_its_debt() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(10, clock=lambda: now[0], sleep=sleep)
    bucket.wait()
    bucket.spend(25)  # one big page overdraws: 10 saved, 15 owed
    bucket.wait()
    assert slept == [1.5]
    now[0] += 10  # a long pause saves at most one second's worth
    bucket.spend(10)
    bucket.wait()
    assert slept == [1.5]


def test_naming_is_detected_from_the_bucket() -> None:
    store = MemoryStore()
    assert not uses_plain_text_names(store, "orders/")
    store.put("orders/" + k.md5_object_name({"pk": {"S": "a"}}), b"{}", {})
    assert not uses_plain_text_names(store, "orders/")
    store.put("tenanted/acme/a | 1", b"{}", {})
    assert uses_plain_text_names(store, "tenanted/")


def test_an_item_only_the_backup_holds_is_drift_in_a_small_md5_folder(aws: tuple[Any, Any]) -> None:
    """A missed REMOVE: the backup (our MD5 names, nothing else in the bucket) holds an item the table
    does not, and the table holds one the backup does not. Both are drift, exit 1. (A small folder is
    read whole, as restore reads it: S3 stand-ins that answer a lone KeyMarker wrongly drop no item.)"""
    ddb, s3 = aws
    old = time.time() - 600
    backed_up(S3Store(s3, BUCKET), [put({"pk": {"S": "a"}}, {"pk": {"S": "a"}, "v": {"N": "1"}}, at=old)])
    only_backup = run_verify("--json")
    assert only_backup.exit_code == 1, only_backup.output
    data = json.loads(only_backup.stdout)
    assert (data["backup_items"], data["drift"]) == (1, {"missing": 0, "extra": 1, "differs": 0})
    ddb.put_item(TableName="orders", Item={"pk": {"S": "z"}, "v": {"N": "1"}})
    both = run_verify("--json")
    assert both.exit_code == 1
    assert json.loads(both.stdout)["drift"] == {"missing": 1, "extra": 1, "differs": 0}
