"""Requests per item of a restore: our canonical names against the original tool's names.

On the in-memory store, counting every LIST, GET and HEAD (docs/format.md quotes the figures).
Run: .venv/bin/python scripts/alias_cost.py
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from builders import put
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.format import keys as k
from ddb_backup.restore.execute import RestoreOptions, restore
from ddb_backup.store.memory import MemoryStore
from fake_dynamodb import FakeDynamoDB
from original_tool import OriginalTool

T0 = 1_764_000_000.0
ITEMS = 2000
SCHEMA = k.KeySchema("userId", "createdAt")


class Clock:
    def __init__(self) -> None:
        self.now = T0 + 2

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)


class Counting(MemoryStore):
    """Counts every request, an empty LIST included (the MemoryStore's own counter skips those)."""

    calls = 0

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Any:
        Counting.calls += 1
        return super().list_versions(prefix, key_marker=key_marker)

    def get(self, key: str, version_id: str | None = None) -> Any:
        Counting.calls += 1
        return super().get(key, version_id)

    def head(self, key: str, version_id: str | None = None) -> Any:
        Counting.calls += 1
        return super().head(key, version_id)


def records(value: int, at: float) -> list[dict[str, Any]]:
    keys = [{"userId": {"S": f"u{i}"}, "createdAt": {"N": str(i)}} for i in range(ITEMS)]
    return [put(key, {"v": {"N": str(value)}}, first=value == 1, at=at) for key in keys]


def measure(store: Counting, label: str) -> None:
    dynamodb = FakeDynamoDB()
    dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "createdAt", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "userId", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    before = Counting.calls
    with tempfile.TemporaryDirectory() as folder:
        options = RestoreOptions(
            bucket="b", source="orders", target="copy", at=T0 + 100, checkpoint=Path(folder) / "c.json", workers=8
        )
        restore(options, store, dynamodb, now=lambda: T0 + 10_000)
    used = Counting.calls - before
    restored = len(dynamodb.dump("copy"))
    print(f"{label}: {restored} items restored, {used} requests, {used / ITEMS:.2f} per item")


def main() -> None:
    ours = Counting(clock=Clock())
    Capture(ours, CaptureSettings(workers=4), lambda table: SCHEMA).process(records(1, T0))
    measure(ours, "ours (canonical MD5 names)")

    original = Counting(clock=Clock())
    OriginalTool(original).process(records(1, T0))
    measure(original, "the original tool, no prefix, MD5 in stream order (userId/createdAt)")

    clock = Clock()
    upgraded = Counting(clock=clock)
    OriginalTool(upgraded).process(records(1, T0))
    clock.now = T0 + 50
    Capture(upgraded, CaptureSettings(workers=4), lambda table: SCHEMA).process(records(2, T0 + 48))
    measure(upgraded, "upgrade in place (the original's object and ours for every item)")


if __name__ == "__main__":
    main()
