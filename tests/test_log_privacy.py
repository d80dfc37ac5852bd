"""No key, tenant or attribute value reaches a log line or an error report (issue 15.4).

Records carrying recognisable values (an e-mail address as the key, a tenant name, attribute values)
go through every error path of the writers: bad records, images missing, invalid keys, bad and missing
tenants, a tenant change, S3 failures of puts and deletes, keys too long for S3, versioning off, the
function's cold start and batch summary, full-backup's and run's failures. Everything logged (by any
logger, the function's JSON logs on stdout included; our loggers at DEBUG, libraries' from INFO as
deployed) and every error text returned is then searched for the values: an item is referenced as
``item <md5>`` instead (``ddb_backup.capture.privacy``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from builders import event, put, record, remove
from ddb_backup import handler as h
from ddb_backup.capture.batch_response import capture_handler
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.full_backup import FullBackup, FullBackupOptions
from ddb_backup.capture.privacy import item_ref, scrub
from ddb_backup.capture.stream_runner import RunnerOptions, StreamRunner
from ddb_backup.format import keys as k
from ddb_backup.settings import SettingsError
from ddb_backup.store import StoreError
from ddb_backup.store.memory import MemoryStore
from fake_dynamodb import FakeDynamoDB
from fake_streams import FakeStreams

EMAIL = "alice.liddell@wonderland.example"
TENANT = "hatters-tea-party-ltd"
NEW_TENANT = "white-rabbit-holdings"
NOTE = "cheshire grin, card 4471"
RANGE = "queen-of-hearts"
SECRETS = [EMAIL, TENANT, NEW_TENANT, NOTE, RANGE]
SCHEMA = k.KeySchema("email", "sk")
KEY = {"email": {"S": EMAIL}, "sk": {"S": RANGE}}
REF = item_ref(KEY)


class Everything(logging.Handler):
    """Every log record of every logger: message, arguments and extra fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.getMessage()} {r.__dict__!r} {r.exc_text or ''}" for r in self.records)


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    catcher = Everything()
    loggers = [logging.getLogger(), logging.getLogger("ddb_backup"), *(
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict) if name.startswith("ddb_backup")
    )]  # fmt: skip
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(catcher)
        # Our loggers at every level; the rest (botocore's request dumps at DEBUG) as deployed, from INFO.
        logger.setLevel(logging.DEBUG if logger.name.startswith("ddb_backup") else logging.INFO)

    def everything() -> str:
        out = capsys.readouterr()
        return catcher.text() + out.out + out.err

    yield everything
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(catcher)
        logger.setLevel(level)


def leaks(*texts: Any) -> list[str]:
    """The recognisable values found in the texts, plain or JSON-escaped."""
    text = "\n".join(t if isinstance(t, str) else json.dumps(t, default=str) for t in texts)
    forms = {secret: {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote(secret)} for secret in SECRETS}
    return [secret for secret, spelled in forms.items() if any(form in text for form in spelled)]


def image(tenant: Any = TENANT, **extra: Any) -> dict[str, Any]:
    tenant_value = {"S": tenant} if isinstance(tenant, str) else tenant
    return {**KEY, "note": {"S": NOTE}, "tenant": tenant_value, "tags": {"SS": [NOTE, EMAIL]}, **extra}


class FailingStore(MemoryStore):
    """S3 failing every write and look, with S3Store's message shapes: the object key in it, and the
    URL of the request (botocore's connection errors), where the key is percent-encoded."""

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], **kw: Any) -> Any:
        raise StoreError(f"PutObject s3://bk/{key}: InternalError (metadata {dict(metadata)})")

    def delete(self, key: str) -> str | None:
        raise StoreError(f"DeleteObject s3://bk/{key}: SlowDown")

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Any:
        if not prefix.endswith((f"{RANGE}-2", f"{RANGE}-3")):  # the others reach their puts
            return super().list_versions(prefix, key_marker=key_marker)
        url = f"http://127.0.0.1:9/bk?versions&prefix={quote(prefix, safe='')}&max-keys=1000"
        raise StoreError(f"ListObjectVersions s3://bk/{prefix}: Connection was closed before we received a "
                         f'valid response from endpoint URL: "{url}".')  # fmt: skip


def without(raw: dict[str, Any], image_name: str, view: str) -> dict[str, Any]:
    raw["dynamodb"].pop(image_name, None)
    raw["dynamodb"]["StreamViewType"] = view
    return raw


def bad_records() -> list[dict[str, Any]]:
    """One record per failure kind, each holding the recognisable values."""
    unknown = record("INSERT", {**KEY, "sk": {"S": RANGE + "-u"}}, new=image(), seq=1)
    unknown["eventName"] = "UPSERT"
    return [
        unknown,
        without(record("INSERT", {**KEY, "sk": {"S": RANGE + "-k"}}, new=image(), seq=2), "NewImage", "KEYS_ONLY"),
        without(record("REMOVE", {**KEY, "sk": {"S": RANGE + "-n"}}, old=image(), seq=3), "OldImage", "NEW_IMAGE"),
        record("INSERT", {"email": {"N": EMAIL}, "sk": {"S": RANGE}}, new=image(), seq=4),  # N not a number
        record("INSERT", {"email": {"S": ""}, "sk": {"S": RANGE}}, new=image(), seq=5),  # empty key value
        record("INSERT", {"email": {"S": EMAIL}}, new=image(), seq=6),  # the range key is missing
        record("INSERT", {"email": {"BOOL": True}, "sk": {"S": RANGE}}, new=image(), seq=7),  # key type
        record("INSERT", {"email": {"S": EMAIL}, "sk": {"S": RANGE + "-x"}, "x": {"S": NOTE}}, new=image(), seq=8),
    ]


def writes_that_fail() -> list[dict[str, Any]]:
    """Valid records whose S3 writes fail: puts, removals, a tenant change, odd tenants, a huge key."""
    huge = {"email": {"S": EMAIL + "x" * 1100}, "sk": {"S": RANGE}}
    return [
        put(KEY, image(), seq=20),
        remove({**KEY, "sk": {"S": RANGE + "-2"}}, {"tenant": {"S": TENANT}, "note": {"S": NOTE}}, seq=21),
        record("MODIFY", {**KEY, "sk": {"S": RANGE + "-3"}}, new=image(NEW_TENANT), old=image(TENANT), seq=22),
        put({**KEY, "sk": {"S": RANGE + "-4"}}, image({"M": {"name": {"S": TENANT}}}), seq=23),  # tenant of type M
        put({**KEY, "sk": {"S": RANGE + "-5"}}, {"note": {"S": NOTE}}, seq=24),  # no tenant at all
        put(huge, {**image(), **huge}, seq=25),  # plain-text name over 1,024 bytes: the MD5 name
    ]


@pytest.mark.parametrize("plain_text", [True, False], ids=["plain-text", "md5"])
def test_capture_failures_report_items_by_reference_only(logs: Any, plain_text: bool) -> None:
    # GIVEN multi-tenant capture (plain-text names or MD5 names) on a bucket whose writes all fail
    settings = CaptureSettings(prefix="pii", plain_text=plain_text, tenant_column="tenant", workers=2)
    capture = Capture(FailingStore(), settings, lambda _table: SCHEMA)
    # WHEN bad records and records whose writes fail go through it
    report = capture.process(bad_records() + writes_that_fail())
    # THEN every record failed or was reported, and no value is in the logs or the report
    assert len(report.failures) == len(bad_records()) + len(writes_that_fail())
    assert leaks(logs(), report.errors, report.lambda_response()) == []
    # AND a failed write names the item by its reference, which is its MD5 name
    put_error = next(error for error in report.errors if error.startswith("record 20"))
    assert REF in put_error
    assert f"item {k.md5_object_name(KEY)}" == REF
    assert "InternalError" in put_error
    # AND in plain-text mode a failed look's request URL (the key percent-encoded) was among them
    assert any("Connection was closed" in error for error in report.errors) == plain_text


def test_a_tenant_without_a_usable_value_is_logged_by_reference(logs: Any) -> None:
    # GIVEN capture that succeeds, multi-tenant
    settings = CaptureSettings(plain_text=True, tenant_column="tenant", workers=2)
    capture = Capture(MemoryStore(), settings, lambda _table: SCHEMA)
    # WHEN items without a usable tenant are written (a map holding the values, a missing one)
    report = capture.process(writes_that_fail()[3:5])
    # THEN they are stored and the warnings carry no values
    assert report.failures == [] and report.missing_tenant == 2
    text = logs()
    assert "%none" in text and leaks(text) == []


@pytest.fixture
def function_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """The function's AWS on moto: the source table (for plain-text names) and a versioned bucket."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("email", "sk")],
            BillingMode="PAY_PER_REQUEST",
        )
        s3.create_bucket(Bucket="pii-bucket")
        monkeypatch.setattr(h, "make_client", {"s3": s3, "dynamodb": ddb}.get)
        env = {
            "BackupBucket": "pii-bucket",
            "BackupPrefix": "pii",
            "PlainTextKeyAsFilename": "true",
            "MultiTenancyColumn": "tenant",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        h.reset_runtime()
        yield s3, ddb
        h.reset_runtime()


def test_the_function_logs_no_values_when_s3_fails_or_versioning_is_off(
    logs: Any, function_aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, _ = function_aws
    # GIVEN a bucket without versioning: the cold start refuses it
    with pytest.raises(SettingsError) as refused:
        h.handler(event(put(KEY, image(), seq=30)), None)
    # WHEN versioning is on but every S3 write fails (the real S3Store over a failing client)
    s3.put_bucket_versioning(Bucket="pii-bucket", VersioningConfiguration={"Status": "Enabled"})
    h.reset_runtime()

    def failing(**args: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalError", "Message": f"key {args['Key']}"}}, "PutObject")

    monkeypatch.setattr(s3, "put_object", failing)
    monkeypatch.setattr(s3, "delete_object", failing)
    response = h.handler(event(*bad_records(), *writes_that_fail()), None)
    # THEN the function's logs (its JSON summary included), its response and the refusal carry no values
    assert len(response["batchItemFailures"]) == len(bad_records()) + len(writes_that_fail())
    text = logs()
    assert "batch had failures" in text and REF in text
    assert leaks(text, response, str(refused.value)) == []


def test_full_backup_failures_name_items_by_reference(logs: Any) -> None:
    # GIVEN a table of items holding the values, and a bucket whose writes fail
    ddb = FakeDynamoDB()
    ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("email", "sk")],
    )
    for n in range(3):
        ddb.put_item(TableName="orders", Item={**image(), "sk": {"S": f"{RANGE}-{n}"}})
    options = FullBackupOptions(prefix="pii", plain_text=True, tenant_column="tenant", segments=1, workers=2)
    # WHEN a full backup runs
    summary = FullBackup(ddb, FailingStore(), "orders", SCHEMA, options).run()
    # THEN each failure is reported by reference, with no value in the logs or the summary
    assert summary.failed == 3 and len(summary.errors) == 3
    assert all(error.startswith("item ") for error in summary.errors)
    assert leaks(logs(), summary.errors) == []


def test_run_logs_no_values_while_it_retries_failed_batches(logs: Any) -> None:
    # GIVEN a stream of changes to items keyed by e-mail, and a bucket whose first writes fail
    streams = FakeStreams(page_size=2)
    streams.add_shard("S", first_sequence=100)
    for n in range(4):
        streams.write("S", f"{EMAIL}#{n}", value=n)

    class FlakyStore(MemoryStore):
        failures = 3

        def put(self, key: str, body: bytes, metadata: Mapping[str, str], **kw: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise StoreError(f"PutObject s3://bk/{key}: SlowDown")
            return super().put(key, body, metadata, **kw)

    store = FlakyStore()
    settings = CaptureSettings(prefix="pii", plain_text=True, workers=2)
    capture = Capture(store, settings, lambda _table: k.KeySchema("pk"))
    checkpoints = _MemoryCheckpoints()
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-27T00:00:00.000"
    options = RunnerOptions(batch_size=2, until_idle=True, retry_base=0.0, poll_interval=0.0)
    notes: list[str] = []
    # WHEN run backs the stream up, retrying the failed batches
    summary = StreamRunner(streams, arn, capture_handler(capture), checkpoints, options, notify=notes.append).run()
    # THEN everything is written in the end, and nothing it logged or said names an item by value
    assert summary.records == 4 and summary.failed_batches >= 1
    assert leaks(logs(), notes) == []


class _MemoryCheckpoints:
    location = "memory"

    def __init__(self) -> None:
        self.saved: Any = None

    def load(self) -> Any:
        return self.saved

    def save(self, checkpoint: Any) -> None:
        self.saved = checkpoint


def test_scrub_replaces_object_keys_and_values_but_keeps_the_rest() -> None:
    object_key = f"pii/orders/{TENANT}/{EMAIL} | {RANGE}"
    text = f"record 4900000000001: PutObject s3://bk/{object_key}: InternalError; note {NOTE!r}; n 12"
    scrubbed = scrub(text, REF, object_keys=[object_key], values=[image()])
    assert scrubbed == f"record 4900000000001: PutObject s3://bk/<object of {REF}>: InternalError; note '<value>'; n 12"
    assert item_ref({"bad": {"X": EMAIL}}).startswith("item ") and EMAIL not in item_ref({"bad": {"X": EMAIL}})
