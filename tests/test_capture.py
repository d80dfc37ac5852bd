"""Capture: records become versions, in order per item, with failures and replays handled."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from builders import put, record, remove
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.store import StoreError
from ddb_backup.store.memory import MemoryStore

A = {"pk": {"S": "a"}}
B = {"pk": {"S": "b"}}
SCHEMA = k.KeySchema("pk")
STREAM_LABEL = "2026-11-27T00:00:00.000"


def capture(store: Any, **settings: Any) -> Capture:
    return Capture(store, CaptureSettings(**settings), lambda table: SCHEMA)


def versions(store: MemoryStore, key: str) -> list[Any]:
    """Oldest first, with metadata."""
    rows = [row for row in store.list_versions(key) if row.key == key]
    return [None if row.is_delete_marker else store.get(key, row.version_id) for row in reversed(rows)]


class FailingStore(MemoryStore):
    """Fails the n-th put of a given key, once."""

    def __init__(self, key: str, nth: int) -> None:
        super().__init__()
        self.key, self.nth, self.seen = key, nth, 0
        self.lock = threading.Lock()

    def put(self, key: str, body: bytes, metadata: Any, **kw: Any) -> Any:
        if key == self.key:
            with self.lock:
                self.seen += 1
                if self.seen == self.nth:
                    raise StoreError("injected 503 SlowDown")
        return super().put(key, body, metadata, **kw)


def test_insert_modify_remove_leave_images_a_tombstone_and_a_delete_marker(memory_store: MemoryStore) -> None:
    report = capture(memory_store, plain_text=True).process(
        [
            put(A, {"v": {"N": "1"}}, seq=1, at=10),
            put(A, {"v": {"N": "2"}}, first=False, seq=2, at=11),
            remove(A, seq=3, at=12),
        ]
    )
    assert report.failures == [] and report.written == 3
    first, second, tombstone, marker = versions(memory_store, "orders/a")
    assert json.loads(first.body) == {"pk": {"S": "a"}, "v": {"N": "1"}}
    assert first.content_type == "application/json"
    assert vm.VersionMeta.from_s3(second.metadata) == vm.VersionMeta(
        event_name="MODIFY",
        event_time=11.0,
        sequence_number="2",
        event_id="ev-2",
        key=A,
        stream=STREAM_LABEL,
        tenancy=vm.Tenancy(None),  # no tenant folder: a reader takes none for this version
    )
    assert tombstone.body == b"" and tombstone.metadata["event-name"] == "REMOVE"
    assert tombstone.metadata["event-time"] == "12"
    assert marker is None


def test_ttl_deletions_are_marked(memory_store: MemoryStore) -> None:
    capture(memory_store).process([remove(A, ttl=True, seq=5)])
    name = "orders/" + k.md5_object_name(A)
    assert versions(memory_store, name)[0].metadata["removed-by"] == "ttl"


def test_records_of_one_item_stay_in_stream_order_under_concurrency(memory_store: MemoryStore) -> None:
    records = [put({"pk": {"S": f"i{n % 7}"}}, {"n": {"N": str(n)}}, seq=n + 1) for n in range(200)]
    capture(memory_store, plain_text=True, workers=16).process(records)
    for item in range(7):
        seen = [int(json.loads(v.body)["n"]["N"]) for v in versions(memory_store, f"orders/i{item}")]
        assert seen == sorted(seen) and len(seen) == len(range(item, 200, 7))


def test_after_a_failure_no_later_record_of_that_item_is_written_and_lambda_retries_from_it() -> None:
    store = FailingStore("orders/a", nth=2)
    records = [
        put(A, seq=1),
        put(B, seq=2),
        put(A, first=False, seq=3),
        put(B, first=False, seq=4),
        put(A, first=False, seq=5),
    ]
    report = capture(store, plain_text=True).process(records)
    assert report.lambda_response() == {"batchItemFailures": [{"itemIdentifier": "3"}]}
    assert [v.metadata["sequence-number"] for v in versions(store, "orders/a")] == ["1"]
    assert [v.metadata["sequence-number"] for v in versions(store, "orders/b")] == ["2", "4"]

    # WHEN a new (cold) function gets the redelivery from the failed record THEN the rest lands in order.
    retry = capture(store, plain_text=True).process(records[2:])
    assert retry.failures == []
    assert [v.metadata["sequence-number"] for v in versions(store, "orders/a")] == ["1", "3", "5"]


def test_failures_are_listed_lowest_sequence_first() -> None:
    store = MemoryStore()
    bad_a = record("MODIFY", A, seq=9)  # no NewImage
    bad_b = record("MODIFY", B, seq=4)
    report = capture(store).process([bad_a, bad_b])
    assert report.failures == ["4", "9"]


def test_a_warm_function_skips_replays_so_an_older_image_never_becomes_newest(
    memory_store: MemoryStore,
) -> None:
    engine = capture(memory_store, plain_text=True)
    engine.process([put(A, {"v": {"N": "1"}}, seq=1), put(A, {"v": {"N": "2"}}, first=False, seq=2)])
    report = engine.process([put(A, {"v": {"N": "1"}}, seq=1)])  # a stale redelivery
    assert report.replays_skipped == 1 and report.written == 0
    newest = memory_store.get("orders/a")
    assert json.loads(newest.body)["v"] == {"N": "2"}


def test_duplicate_deliveries_in_one_batch_are_written_once(memory_store: MemoryStore) -> None:
    twice = put(A, seq=7)
    report = capture(memory_store, plain_text=True).process([twice, twice])
    assert report.written == 1 and report.replays_skipped == 1
    assert len(versions(memory_store, "orders/a")) == 1


class TestMultiTenancy:
    def settings(self) -> dict[str, Any]:
        return {"plain_text": True, "tenant_column": "tenant"}

    def test_tenant_comes_from_the_new_image_else_the_old(self, memory_store: MemoryStore) -> None:
        engine = capture(memory_store, **self.settings())
        engine.process([put(A, {"tenant": {"S": "acme/eu"}}, seq=1), remove(A, {"tenant": {"S": "acme/eu"}}, seq=2)])
        assert [row.key for row in memory_store.list_versions("orders/")] == ["orders/acme%2Feu/a"] * 3

    def test_a_tenant_change_removes_the_item_from_the_old_tenant(self, memory_store: MemoryStore) -> None:
        engine = capture(memory_store, **self.settings())
        move = record("MODIFY", A, new={**A, "tenant": {"S": "new"}}, old={**A, "tenant": {"S": "old"}}, seq=3)
        engine.process([put(A, {"tenant": {"S": "old"}}, seq=1), move])
        old = versions(memory_store, "orders/old/a")
        assert old[-2].metadata["removed-by"] == "tenant-change" and old[-1] is None
        assert json.loads(memory_store.get("orders/new/a").body)["tenant"] == {"S": "new"}

    def test_a_missing_tenant_is_kept_under_the_reserved_segment_and_counted(self, memory_store: MemoryStore) -> None:
        report = capture(memory_store, **self.settings()).process([put(A, seq=1)])
        assert report.failures == [] and report.missing_tenant == 1
        assert memory_store.get("orders/%none/a").metadata["event-name"] == "INSERT"

    def test_a_remove_without_old_image_names_the_setting(self, memory_store: MemoryStore) -> None:
        report = capture(memory_store, **self.settings()).process([record("REMOVE", A, seq=4, view="KEYS_ONLY")])
        assert report.failures == ["4"]
        assert "NEW_AND_OLD_IMAGES" in report.errors[0] and "MultiTenancyColumn" in report.errors[0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (record("INSERT", A, seq=1, view="KEYS_ONLY"), "StreamViewType"),
        ({**record("INSERT", A, new=A, seq=2), "eventName": "UPSERT"}, "unknown eventName"),
        (record("INSERT", {}, new=A, seq=3), "Keys is missing"),
        ({**record("INSERT", A, new=A, seq=4), "eventSource": "aws:sqs"}, "not 'aws:dynamodb'"),
        (
            {**record("INSERT", A, new=A, seq=5), "eventSourceARN": "arn:aws:sqs:x"},
            "does not name a DynamoDB table",
        ),
    ],
)
def test_records_that_cannot_be_backed_up_fail_with_an_actionable_message(
    memory_store: MemoryStore, raw: dict[str, Any], message: str
) -> None:
    report = capture(memory_store).process([raw])
    assert len(report.failures) == 1
    assert message in report.errors[0]
    assert list(memory_store.list_versions("")) == []


def test_new_image_streams_back_up_fine_without_tenancy(memory_store: MemoryStore) -> None:
    report = capture(memory_store).process(
        [record("INSERT", A, new=A, seq=1, view="NEW_IMAGE"), record("REMOVE", A, seq=2, view="NEW_IMAGE")]
    )
    assert report.failures == [] and report.written == 2


def test_a_records_key_is_canonicalised_once_and_names_its_object_as_the_key_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 16: the canonical key and its JSON are computed once per record and reused for grouping,
    naming and the metadata."""
    from ddb_backup.capture.records import StreamRecord

    raw = put({"pk": {"S": "a"}, "sk": {"N": "1.50"}}, {"v": {"N": "1"}})
    calls: list[Any] = []
    original = k.canonical_key
    monkeypatch.setattr(k, "canonical_key", lambda key: calls.append(key) or original(key))
    store = MemoryStore()
    capture = Capture(store, CaptureSettings(workers=1), lambda table: k.KeySchema("pk", "sk"))
    assert not capture.process([raw]).failures
    assert len(calls) == 1
    record = StreamRecord(raw)
    assert record.key_json == k.key_json(raw["dynamodb"]["Keys"]) == '{"pk":{"S":"a"},"sk":{"N":"1.5"}}'
    assert [entry.key for entry in store.list_versions("")] == ["orders/" + k.md5_hex(record.key_json)]


def test_a_write_names_its_item_only_when_it_failed() -> None:
    from ddb_backup.store.base import UnversionedWrite, require_version

    asked: list[str] = []

    def name() -> str:
        asked.append("asked")
        return "PutObject of item 0123"

    assert require_version("v1", name) == "v1" and asked == []
    with pytest.raises(UnversionedWrite, match="PutObject of item 0123 returned no VersionId"):
        require_version("null", name)
