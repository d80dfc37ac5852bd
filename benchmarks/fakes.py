"""Fakes the benchmarks share: a store wrapper counting requests in flight, a synthetic bucket whose
listing is computed lazily, and a DynamoDB client with latency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup.store import ObjectStore, PutResult, StoredObject, VersionEntry


class InFlight:
    """Counts requests in flight and remembers the most at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.total = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.total += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


class CountingStore:
    """An ``ObjectStore`` that counts concurrent requests to the store it wraps."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.flight = InFlight()

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], **kw: Any) -> PutResult:
        with self.flight:
            return self.inner.put(key, body, metadata, **kw)

    def delete(self, key: str) -> str | None:
        with self.flight:
            return self.inner.delete(key)

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        with self.flight:
            return self.inner.get(key, version_id)

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        with self.flight:
            return self.inner.head(key, version_id)

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        return self.inner.list_versions(prefix, key_marker=key_marker)

    def versioning_enabled(self) -> bool:
        return self.inner.versioning_enabled()


class LatencyDynamoDB:
    """Enough of a boto3 DynamoDB client for restore: tables are described, created and counted, and
    ``batch_write_item`` sleeps ``latency`` and keeps the items in memory by their key attributes."""

    MAX_BATCH = 25

    def __init__(self, key_names: tuple[str, ...], latency: float = 0.0) -> None:
        self.key_names = key_names
        self.latency = latency
        self.tables: dict[str, dict[str, Any]] = {}
        self.descriptions: dict[str, dict[str, Any]] = {}
        self.flight = InFlight()
        self._lock = threading.Lock()

    def describe_table(self, TableName: str, **_: Any) -> dict[str, Any]:
        if TableName not in self.descriptions:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": f"table {TableName} not found"}},
                "DescribeTable",
            )
        return {"Table": self.descriptions[TableName]}

    def create_table(self, **args: Any) -> dict[str, Any]:
        name = args["TableName"]
        with self._lock:
            self.descriptions[name] = {**args, "TableStatus": "ACTIVE", "ItemCount": 0}
            self.tables.setdefault(name, {})
        return {"TableDescription": self.descriptions[name]}

    def scan(self, TableName: str, **_: Any) -> dict[str, Any]:
        with self._lock:
            items = list(self.tables.get(TableName, {}).values())
        return {"Items": items, "Count": len(items), "ScannedCount": len(items)}

    def batch_write_item(self, RequestItems: Mapping[str, list[Mapping[str, Any]]], **_: Any) -> dict[str, Any]:
        if sum(len(requests) for requests in RequestItems.values()) > self.MAX_BATCH:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "too many items in BatchWriteItem"}},
                "BatchWriteItem",
            )
        with self.flight:
            if self.latency:
                time.sleep(self.latency)
            with self._lock:
                for table, requests in RequestItems.items():
                    rows = self.tables.setdefault(table, {})
                    for request in requests:
                        self._apply(rows, request)
        return {"UnprocessedItems": {}}

    def _apply(self, rows: dict[str, Any], request: Mapping[str, Any]) -> None:
        if "PutRequest" in request:
            item = request["PutRequest"]["Item"]
            rows[repr([item[name] for name in self.key_names])] = item
        else:
            key = request["DeleteRequest"]["Key"]
            rows.pop(repr([key[name] for name in self.key_names]), None)

    def item_count(self, table: str) -> int:
        return len(self.tables.get(table, {}))
