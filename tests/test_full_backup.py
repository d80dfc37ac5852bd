"""Full backup: object names, metadata, the stale-image rule, the read-rate limit, a race with a live writer."""

from __future__ import annotations

import bisect
import json
import random
import threading
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from builders import put, remove
from ddb_backup.aws.ratelimit import TokenBucket
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.full_backup import FullBackup, FullBackupOptions, ImageWriter, read_time_for
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.store import PutResult, StoredObject
from ddb_backup.store.memory import MemoryStore

SCHEMA = k.KeySchema("pk")
TABLE = "orders"


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.now = start
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def tick(self, seconds: float = 0.25) -> float:
        with self.lock:
            self.now += seconds
            return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self(), tz=UTC)


def writer_for(store: MemoryStore, *, tenant: str | None = None, plain: bool = False) -> ImageWriter:
    namer = k.ItemNamer("bk", TABLE, plain, SCHEMA if plain else None)
    return ImageWriter(store, namer, SCHEMA, tenant)


def capture_for(store: MemoryStore, *, tenant: str | None = None, plain: bool = False) -> Capture:
    settings = CaptureSettings(prefix="bk", plain_text=plain, tenant_column=tenant, workers=2)
    return Capture(store, settings, lambda _table: SCHEMA)


def meta_of(store: MemoryStore, key: str, version_id: str | None = None) -> vm.VersionMeta:
    meta = vm.VersionMeta.from_s3(store.head(key, version_id).metadata)
    assert meta is not None
    return meta


def only_key(store: MemoryStore) -> str:
    keys = {entry.key for entry in store.list_versions("bk/")}
    assert len(keys) == 1
    return keys.pop()


# -- names and metadata -----------------------------------------------------------------------------


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("tenant", [None, "org"])
def test_a_scanned_item_gets_the_stream_writers_name_and_full_backup_metadata(plain: bool, tenant: str | None) -> None:
    # GIVEN the stream writer's object for an item (number key spelled 1.0, a tenant, binary data)
    stream_store, scan_store = MemoryStore(), MemoryStore()
    image = {"pk": {"N": "1.0"}, "org": {"S": "acme/eu"}, "blob": {"B": "AAE="}}
    capture_for(stream_store, tenant=tenant, plain=plain).process([put({"pk": {"N": "1.0"}}, image, at=10.0)])
    # WHEN the scan's image of the same item (boto3 shape: bytes, the number spelled 1) is backed up
    scanned = {"pk": {"N": "1"}, "org": {"S": "acme/eu"}, "blob": {"B": b"\x00\x01"}}
    assert writer_for(scan_store, tenant=tenant, plain=plain).write(scanned, 1_764_000_000.0)
    # THEN it has the same object key, FULL_BACKUP metadata without stream identity, and the same body
    key = only_key(scan_store)
    assert key == only_key(stream_store)
    meta = meta_of(scan_store, key)
    assert (meta.event_name, meta.writer, meta.event_time) == ("FULL_BACKUP", "full-backup", 1_764_000_000.0)
    assert (meta.sequence_number, meta.event_id, meta.key) == (None, None, {"pk": {"N": "1"}})
    assert "sequence-number" not in scan_store.head(key).metadata
    assert json.loads(scan_store.get(key).body) == {**image, "pk": {"N": "1"}}  # binary as base64, as Lambda's


def test_the_read_time_is_rounded_down_to_the_second_before_the_scan_and_moved_back_by_the_margin() -> None:
    assert read_time_for(1000.9, margin=0) == 1000.0
    assert read_time_for(1000.9) == 999.0
    assert read_time_for(1000.0, margin=0.5) == 999.0


# -- the stale-image rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream_time", "written"),
    [(99.0, True), (100.0, False), (100.5, False), (130.0, False)],
    ids=["older-stream-change", "same-second-stream-wins", "later-in-the-second", "later"],
)
def test_a_stream_change_at_or_after_the_read_time_is_left_newest(stream_time: float, written: bool) -> None:
    # GIVEN the stream has written a change of the item at stream_time
    store = MemoryStore()
    capture_for(store).process([put({"pk": {"S": "a"}}, {"v": {"S": "stream"}}, at=stream_time)])
    # WHEN the full backup wants to write an image read at 100
    result = writer_for(store).write({"pk": {"S": "a"}, "v": {"S": "scan"}}, 100.0)
    # THEN it writes only over an older change
    key = only_key(store)
    assert result is written
    assert meta_of(store, key).event_name == ("FULL_BACKUP" if written else "INSERT")


@pytest.mark.parametrize(("removed_at", "written"), [(99.0, True), (100.0, False), (101.0, False)])
def test_a_stream_removal_at_or_after_the_read_time_is_not_undone(removed_at: float, written: bool) -> None:
    # GIVEN the stream removed the item (tombstone + delete marker)
    store = MemoryStore()
    capture_for(store).process(
        [put({"pk": {"S": "a"}}, at=50.0, seq=1), remove({"pk": {"S": "a"}}, at=removed_at, seq=2)]
    )
    # WHEN the full backup writes an image read at 100
    result = writer_for(store).write({"pk": {"S": "a"}, "v": {"S": "scan"}}, 100.0)
    # THEN a removal after the read keeps the item removed; an older removal is superseded by the image
    key = only_key(store)
    assert result is written
    latest = next(iter(store.list_versions(key)))
    assert latest.is_delete_marker is (not written)


def test_a_delete_marker_of_the_original_tool_counts_at_its_write_time() -> None:
    clock = FakeClock(200.0)
    store = MemoryStore(clock=clock.utc)
    key = writer_for(store).object_key({"pk": {"S": "a"}})[0]
    store.put(key, b'{"pk":{"S":"a"}}', {})  # the original tool: no metadata
    store.delete(key)  # written at 200
    assert writer_for(store).write({"pk": {"S": "a"}}, 100.0) is False
    assert writer_for(store).write({"pk": {"S": "a"}}, 300.0) is True


def test_a_version_of_the_original_tool_counts_at_its_write_time() -> None:
    clock = FakeClock(200.0)
    store = MemoryStore(clock=clock.utc)
    key = writer_for(store).object_key({"pk": {"S": "a"}})[0]
    store.put(key, b'{"pk":{"S":"a"}}', {})
    assert writer_for(store).write({"pk": {"S": "a"}}, 199.0) is False
    assert writer_for(store).write({"pk": {"S": "a"}}, 201.0) is True


def test_an_earlier_full_backup_of_the_same_second_is_not_written_again() -> None:
    store = MemoryStore()
    assert writer_for(store).write({"pk": {"S": "a"}}, 100.0) is True
    assert writer_for(store).write({"pk": {"S": "a"}}, 100.0) is False
    assert writer_for(store).write({"pk": {"S": "a"}}, 101.0) is True


class RacingStore:
    """A store in which a live writer strikes just before chosen requests of the full backup."""

    def __init__(self, inner: MemoryStore, strike: Any) -> None:
        self.inner = inner
        self.strike = strike

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        self.strike("head", key)
        return self.inner.head(key, version_id)

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], **kw: Any) -> PutResult:
        self.strike("put", key)
        return self.inner.put(key, body, metadata, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("existing", [False, True], ids=["new-item", "item-with-history"])
def test_a_stream_write_between_the_check_and_the_write_wins(existing: bool) -> None:
    # GIVEN an item the stream may or may not have written before, and a stream change at 101 that lands
    # between the full backup's look at the current version and its write
    inner = MemoryStore()
    capture = capture_for(inner)
    if existing:
        capture.process([put({"pk": {"S": "a"}}, {"v": {"S": "old"}}, at=50.0, seq=1)])
    struck: list[str] = []

    def strike(request: str, _key: str) -> None:
        if request == "put" and not struck:
            struck.append(request)
            capture.process([put({"pk": {"S": "a"}}, {"v": {"S": "new"}}, first=False, at=101.0, seq=2)])

    # WHEN the full backup writes its image read at 100
    result = writer_for(RacingStore(inner, strike)).write({"pk": {"S": "a"}, "v": {"S": "scan"}}, 100.0)  # type: ignore[arg-type]
    # THEN the conditional write fails, the re-check sees the newer change, and the stream's image stays newest
    assert struck == ["put"]
    assert result is False
    key = only_key(inner)
    assert json.loads(inner.get(key).body)["v"] == {"S": "new"}


# -- the read-rate limit ----------------------------------------------------------------------------


def test_the_read_rate_limit_holds_the_long_run_rate_to_the_limit() -> None:
    # GIVEN a limit of 100 read units per second and pages that cost 50 each
    now = [0.0]
    limiter = TokenBucket(100.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    # WHEN 20 pages (1,000 units) are read without any time of their own
    for _ in range(20):
        limiter.wait()
        limiter.spend(50.0)
    # THEN the reads took the time the rate allows (the first second's budget is the burst)
    assert now[0] == pytest.approx((1000 - 100 - 50) / 100.0)


def test_without_a_read_rate_there_is_no_limiter() -> None:
    backup = FullBackup(None, MemoryStore(), "t", k.KeySchema("pk"), FullBackupOptions(read_rate=None))
    assert backup.limiter is None


# -- a live table ---------------------------------------------------------------------------------


class LiveTable:
    """A table as a scan and a live writer see it: each change goes through the stream writer at once."""

    def __init__(self, store: MemoryStore, clock: FakeClock, rng: random.Random, items: int) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.store, self.clock, self.rng = store, clock, rng
        self.capture = capture_for(store)
        self.lock = threading.RLock()
        self.sequence = 0
        self.changes = 0
        for index in range(items):
            self.change(f"item-{index}", put_it=True)

    def change(self, pk: str, *, put_it: bool) -> None:
        with self.lock:
            self.sequence += 1
            at = self.clock.tick(self.rng.choice([0.0, 0.1, 0.4, 0.9]))
            keys = {"pk": {"S": pk}}
            existed = pk in self.items
            if put_it:
                item = {**keys, "v": {"N": str(self.sequence)}}
                self.items[pk] = item
                record = put(keys, item, first=not existed, at=at, seq=self.sequence)
            elif existed:
                record = remove(keys, self.items.pop(pk), at=at, seq=self.sequence)
            else:
                return
            report = self.capture.process([record])
            assert not report.failures
            self.changes += 1

    def maybe_strike(self, *_: Any) -> None:
        with self.lock:
            if self.rng.random() < 0.3:
                pk = f"item-{self.rng.randrange(len(self.items) + 5)}"
                self.change(pk, put_it=self.rng.random() < 0.7)

    def scan(self, **args: Any) -> dict[str, Any]:
        self.maybe_strike()
        with self.lock:
            keys = sorted(pk for pk in self.items if zlib.crc32(pk.encode()) % args["TotalSegments"] == args["Segment"])
            after = args.get("ExclusiveStartKey", {}).get("pk", {}).get("S")
            start = bisect.bisect_right(keys, after) if after is not None else 0
            page = keys[start : start + args.get("Limit", 1_000_000)]
            answer: dict[str, Any] = {
                "Items": [dict(self.items[pk]) for pk in page],
                "ConsumedCapacity": {"TableName": TABLE, "CapacityUnits": 0.5 * len(page)},
            }
            if start + len(page) < len(keys):
                answer["LastEvaluatedKey"] = {"pk": {"S": page[-1]}}
        self.clock.tick(0.3)
        return answer


@pytest.mark.parametrize("seed", range(12))
def test_a_full_backup_racing_a_live_writer_never_leaves_a_stale_newest_version(seed: int) -> None:
    # GIVEN a table of 40 items whose stream is backed up as it changes, with a clock moving in fractions
    # of seconds, and a writer that changes, adds or removes items at random moments of the full backup
    # (before scans, before the backup looks at an item's version, before it writes)
    clock = FakeClock()
    inner = MemoryStore(clock=clock.utc)
    table = LiveTable(inner, clock, random.Random(seed), items=40)
    racing = RacingStore(inner, table.maybe_strike)
    options = FullBackupOptions(prefix="bk", segments=3, page_size=7, workers=4, clock_margin=0.0)
    # WHEN a full backup runs against it
    summary = FullBackup(table, racing, TABLE, SCHEMA, options, clock=clock).run()  # type: ignore[arg-type]
    # THEN every item's newest version (S3's current one, and the newest in the order restore uses)
    # is the table's state now; removed items stay removed
    assert summary.failed == 0
    assert summary.scanned >= 30  # 40 items, less the ones the writer removed first
    assert summary.written + summary.skipped_newer == summary.scanned
    namer = k.ItemNamer("bk", TABLE, False)
    keys = {entry.key for entry in inner.list_versions("bk/")}
    for object_key in keys:
        assert state_by_order(inner, object_key) == current_state(inner, object_key)
    expected = {namer.object_key({"pk": {"S": pk}}): item for pk, item in table.items.items()}
    assert {key: current_state(inner, key) for key in keys if current_state(inner, key) is not None} == expected


def current_state(store: MemoryStore, key: str) -> dict[str, Any] | None:
    latest = next(iter(store.list_versions(key)))
    if latest.is_delete_marker or latest.size == 0:
        return None
    body: dict[str, Any] = json.loads(store.get(key, latest.version_id).body)
    return body


def state_by_order(store: MemoryStore, key: str) -> dict[str, Any] | None:
    versions = [entry for entry in store.list_versions(key) if not entry.is_delete_marker]
    newest = max(versions, key=lambda entry: meta_of(store, key, entry.version_id).order)
    if newest.size == 0:
        return None
    body: dict[str, Any] = json.loads(store.get(key, newest.version_id).body)
    return body


def test_the_race_test_does_race() -> None:
    # The race above must exercise both outcomes: images written and images left alone.
    totals = [0, 0]
    for seed in range(12):
        clock = FakeClock()
        inner = MemoryStore(clock=clock.utc)
        table = LiveTable(inner, clock, random.Random(seed), items=40)
        options = FullBackupOptions(prefix="bk", segments=3, page_size=7, workers=4, clock_margin=0.0)
        summary = FullBackup(table, RacingStore(inner, table.maybe_strike), TABLE, SCHEMA, options, clock=clock).run()  # type: ignore[arg-type]
        totals[0] += summary.written
        totals[1] += summary.skipped_newer
    assert totals[0] > 0
    assert totals[1] > 0
