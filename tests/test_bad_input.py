"""The bad-input corpus (``tests/events/bad/*.json``) through the Lambda handler on moto.

Each case holds the function's settings, the table's key schema (for plain-text names), the event,
and what must happen: ``rejected`` (the handler refuses the event with that message), or the
``failures`` the batch response must list (each with a fragment of the logged error) and the
``objects`` the bucket must then hold (object key -> event names of its versions, oldest first,
``marker`` for a delete marker). ``body: i`` says the newest version is record ``i``'s NewImage.
Strings ``<<N bytes>>`` stand for N bytes of text (a 400 KB item stays a small file).

Every case also checks that no record is lost silently: each one is written, or reported as failed,
or comes after a reported failure (so Lambda redelivers it); and that delivering the same event again
to the warm function adds no version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ddb_backup import handler as h
from ddb_backup.format import keys as k
from ddb_backup.store.s3 import S3Store

CASES = sorted((Path(__file__).parent / "events" / "bad").glob("*.json"))
FILL = re.compile(r"^<<(\d+) bytes>>$")
MD5_OF = re.compile(r"^<<(md5|hashed name) of record (\d+)>>$")


def expand(value: Any) -> Any:
    """Replace ``<<N bytes>>`` strings with N bytes of text."""
    if isinstance(value, str) and (match := FILL.match(value)):
        return "k" * int(match.group(1))
    if isinstance(value, dict):
        return {name: expand(inner) for name, inner in value.items()}
    if isinstance(value, list):
        return [expand(inner) for inner in value]
    return value


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1"), boto3.client("dynamodb", region_name="us-east-1")
    h.reset_runtime()


@pytest.fixture
def deploy(aws: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """A fresh bucket (and table, for plain-text names) and a cold function with the case's settings."""
    s3, dynamodb = aws

    def setup(case: dict[str, Any]) -> S3Store:
        bucket = "bad-" + re.sub(r"[^a-z0-9]+", "-", request.node.callspec.id.lower())[:50]
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if case["table"]:
            recreate_table(dynamodb, case["table"])
        monkeypatch.setenv("BackupBucket", bucket)
        for name in ("BackupPrefix", "PlainTextKeyAsFilename", "MultiTenancyColumn"):
            monkeypatch.delenv(name, raising=False)
        for name, value in case["settings"].items():
            monkeypatch.setenv(name, value)
        # The cold start is the handler's own; only its clients are shared (a new boto3 session costs ~0.4 s).
        monkeypatch.setattr(h, "make_client", {"s3": s3, "dynamodb": dynamodb}.get)
        h.reset_runtime()
        return S3Store(s3, bucket)

    return setup


def recreate_table(dynamodb: Any, schema: dict[str, str]) -> None:
    if "orders" in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName="orders")
    roles = [("HASH", schema["hash"]), *([("RANGE", schema["range"])] if schema.get("range") else [])]
    dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": name, "KeyType": role} for role, name in roles],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for _, name in roles],
        BillingMode="PAY_PER_REQUEST",
    )


def bucket_contents(store: S3Store) -> dict[str, list[tuple[str, str | None]]]:
    """Object key -> (event name or ``marker``, event id), oldest first."""
    contents: dict[str, list[tuple[str, str | None]]] = {}
    for row in store.list_versions(""):
        if row.is_delete_marker:
            entry: tuple[str, str | None] = ("marker", None)
        else:
            meta = store.head(row.key, row.version_id).metadata
            entry = (meta["event-name"], meta.get("event-id"))
        contents.setdefault(row.key, []).insert(0, entry)
    return contents


def logged_failures(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """The failed sequence numbers and error messages of the handler's "batch had failures" log entry."""
    for entry in caplog.records:
        if entry.getMessage().startswith("batch had failures"):
            return getattr(entry, "failures", []), getattr(entry, "errors", [])
    return [], []


def resolve(name: str, records: list[Any]) -> str:
    match = MD5_OF.match(name)
    if not match:
        return name
    key = records[int(match.group(2))]["dynamodb"]["Keys"]
    return "orders/" + (k.md5_object_name(key) if match.group(1) == "md5" else k.hashed_object_name(key))


def unaccounted(records: list[Any], response: dict[str, Any], written_ids: set[str | None]) -> list[Any]:
    """Records neither written nor at or after a reported failure (Lambda would not redeliver them)."""
    identifiers = [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
    sequences = [str(r.get("dynamodb", {}).get("SequenceNumber")) if isinstance(r, dict) else None for r in records]
    if any(identifier not in sequences for identifier in identifiers):
        return []  # Lambda retries the whole batch
    lowest = min((int(identifier) for identifier in identifiers), default=None)
    return [
        record
        for record, sequence in zip(records, sequences, strict=True)
        if record["eventID"] not in written_ids and (lowest is None or int(sequence or 0) < lowest)
    ]


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_bad_input_is_written_or_reported_never_lost(path: Path, deploy: Any, caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN the case's function, bucket and event
    case = json.loads(path.read_text())
    expect = case["expect"]
    event = expand(case["event"])
    store = deploy(case)

    # WHEN Lambda invokes the handler
    if "rejected" in expect:
        with pytest.raises(h.BadEvent, match=expect["rejected"]):
            h.handler(event, None)
        return
    response = h.handler(event, None)

    # THEN the response lists the expected failures, the log says why, and the bucket holds the rest
    failed, errors = logged_failures(caplog)
    expected_failures = expect.get("failures", [])
    assert len(response["batchItemFailures"]) == len(expected_failures) == len(failed), (response, errors)
    for wanted, got, error in zip(expected_failures, response["batchItemFailures"], errors, strict=True):
        assert "sequence" not in wanted or got["itemIdentifier"] == wanted["sequence"]
        assert wanted["error"] in error, error
    records = event["Records"]
    contents = bucket_contents(store)
    objects = {resolve(name, records): events for name, events in expect.get("objects", {}).items()}
    assert {key: [name for name, _ in versions] for key, versions in contents.items()} == objects
    if "body" in expect:
        (object_key,) = objects
        assert json.loads(store.get(object_key).body) == records[expect["body"]]["dynamodb"]["NewImage"]
    if "key_metadata" in expect:
        (object_key,) = objects
        assert ("key" in store.head(object_key).metadata) is expect["key_metadata"]
    written_ids = {event_id for versions in contents.values() for _, event_id in versions}
    assert unaccounted(records, response, written_ids) == []

    # AND a redelivery of the same event to the warm function writes nothing more
    h.handler(event, None)
    assert bucket_contents(store) == contents
