"""GIVEN helpers for the inspecting commands: a backup written through capture at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3

from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.format import keys as k
from ddb_backup.store.memory import MemoryStore

SCHEMA = k.KeySchema("pk")
BUCKET = "backups"


class Clock:
    """S3's clock for a MemoryStore, set by the test."""

    def __init__(self, now: float = 1_764_000_000.0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)


def backed_up(
    store: Any, records: list[dict[str, Any]], *, clock: Clock | None = None, lag: float = 2.0, **settings: Any
) -> None:
    """Capture each record as the function would, written ``lag`` seconds after its event (a MemoryStore's
    clock follows when given)."""
    capture = Capture(store, CaptureSettings(**settings), lambda table: SCHEMA)
    for raw in records:
        if clock is not None:
            clock.now = raw["dynamodb"]["ApproximateCreationDateTime"] + lag
        report = capture.process([raw])
        assert not report.failures, report.errors


def memory_store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


def versioned_bucket(name: str = BUCKET) -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return s3


def create_table(ddb: Any, name: str = "orders", *, range_key: str | None = None) -> None:
    """A table keyed by ``pk`` (S) and optionally a numeric range key."""
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}]
    definitions = [{"AttributeName": "pk", "AttributeType": "S"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        definitions.append({"AttributeName": range_key, "AttributeType": "N"})
    ddb.create_table(TableName=name, KeySchema=schema, AttributeDefinitions=definitions, BillingMode="PAY_PER_REQUEST")
