"""Issue 12.3/12.4: a full backup racing the stream never resurrects a removed item, and takes its image
times from DynamoDB's clock, not the machine's (docs/format.md, writing rule 4)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from builders import put, remove
from ddb_backup.aws.scan import ScanPage, server_time_of
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.full_backup import FullBackup, FullBackupOptions, ImageWriter
from ddb_backup.format import keys as k
from ddb_backup.store import PutResult, StoredObject
from ddb_backup.store.memory import MemoryStore
from order_support import image_at

SCHEMA = k.KeySchema("pk")
A = {"pk": {"S": "a"}}
KEY = "bk/orders/" + k.md5_object_name(A)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)


def stream_writer(store: Any) -> Capture:
    return Capture(store, CaptureSettings(prefix="bk", workers=2), lambda _table: SCHEMA)


class StrikeBeforePut:
    """Runs ``strike`` once, just before the full backup's first PUT (after its look)."""

    def __init__(self, inner: MemoryStore, strike: Any) -> None:
        self.inner, self.strike, self.struck = inner, strike, False

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], **kw: Any) -> PutResult:
        if not self.struck:
            self.struck = True
            self.strike()
        return self.inner.put(key, body, metadata, **kw)

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        return self.inner.head(key, version_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_removal_inside_the_look_then_write_window_does_not_resurrect_the_item() -> None:
    # GIVEN an item removed long ago (tombstone + delete marker), created again at 99 (not yet written by
    # the lagging stream), read by a scan whose read floor is 100
    clock = Clock(60.0)
    inner = MemoryStore(clock=clock.utc)
    stream = stream_writer(inner)
    stream.process([put(A, {"v": {"S": "first"}}, seq=1, at=10.0), remove(A, seq=2, at=50.0)])
    clock.now = 102.0

    def removal_lands() -> None:  # the stream catches up inside the full backup's look-then-write window
        assert not stream.process([put(A, {"v": {"S": "again"}}, seq=3, at=99.0), remove(A, seq=4, at=101.0)]).failures

    racing = StrikeBeforePut(inner, removal_lands)
    writer = ImageWriter(racing, k.ItemNamer("bk", "orders", False), SCHEMA, None)  # type: ignore[arg-type]
    # WHEN the full backup writes the scanned image (If-None-Match passes over the new delete marker)
    writer.write({"pk": {"S": "a"}, "v": {"S": "again"}}, 100.0, 101.0)
    # THEN the removal at 101 is the item's state from then on; the image stands only before it
    assert racing.struck and writer.repaired == 1
    assert image_at(inner, KEY, 101.0) is None
    assert image_at(inner, KEY, 10_000.0) is None
    assert image_at(inner, KEY, 100.0) == {**A, "v": {"S": "again"}}
    assert next(iter(inner.list_versions(KEY))).is_delete_marker  # the bucket's current view agrees


def test_a_racer_older_than_the_read_floor_leaves_the_image_newest() -> None:
    # GIVEN the stream writes a change at 90 (before the floor: the scan saw it) inside the window
    clock = Clock(102.0)
    inner = MemoryStore(clock=clock.utc)
    stream = stream_writer(inner)

    def change_lands() -> None:
        stream.process([put(A, {"v": {"S": "seen"}}, seq=3, at=90.0)])

    racing = StrikeBeforePut(inner, change_lands)
    writer = ImageWriter(racing, k.ItemNamer("bk", "orders", False), SCHEMA, None)  # type: ignore[arg-type]
    assert writer.write({"pk": {"S": "a"}, "v": {"S": "seen"}}, 100.0, 101.0)
    assert writer.repaired == 0
    assert image_at(inner, KEY, 10_000.0) == {**A, "v": {"S": "seen"}}


class DatedTable:
    """One item; the Scan answer carries DynamoDB's ``Date`` header from DynamoDB's own clock."""

    def __init__(self, true_clock: Clock, local: Clock, item: dict[str, Any]) -> None:
        self.true_clock, self.local, self.item = true_clock, local, item

    def scan(self, **_: Any) -> dict[str, Any]:
        self.true_clock.now += 0.4
        self.local.now += 0.4
        date = format_datetime(datetime.fromtimestamp(self.true_clock.now, tz=UTC), usegmt=True)
        return {
            "Items": [dict(self.item)],
            "ConsumedCapacity": {"CapacityUnits": 0.5},
            "ResponseMetadata": {"HTTPHeaders": {"date": date}},
        }


def test_a_full_backup_with_a_clock_five_seconds_slow_never_shows_a_change_before_it_happened() -> None:
    # GIVEN a change at 1000 (DynamoDB's clock) that the lagging stream has not written yet, a scan that
    # reads it at 1002, and a machine whose clock is 5 s slow
    true_clock, local = Clock(1002.0), Clock(997.0)
    inner = MemoryStore(clock=true_clock.utc)
    stream = stream_writer(inner)
    stream.process([put(A, {"v": {"S": "before"}}, seq=1, at=900.0)])
    table = DatedTable(true_clock, local, {"pk": {"S": "a"}, "v": {"S": "after"}})
    options = FullBackupOptions(prefix="bk", segments=1, workers=1)
    # WHEN the full backup runs, then the stream catches up
    summary = FullBackup(table, inner, "orders", SCHEMA, options, clock=local).run()
    stream.process([put(A, {"v": {"S": "after"}}, first=False, seq=2, at=1000.0)])
    # THEN a restore to a moment before the change shows the item before it, and after it the change
    assert summary.written == 1
    assert image_at(inner, KEY, 998.0) == {**A, "v": {"S": "before"}}
    assert image_at(inner, KEY, 999.9) == {**A, "v": {"S": "before"}}
    assert image_at(inner, KEY, 1000.0) == {**A, "v": {"S": "after"}}
    assert image_at(inner, KEY, 5000.0) == {**A, "v": {"S": "after"}}


def test_the_date_header_is_read_as_whole_epoch_seconds() -> None:
    answer = {"ResponseMetadata": {"HTTPHeaders": {"date": "Mon, 30 Nov 2026 08:00:22 GMT"}}}
    assert server_time_of(answer) == datetime(2026, 11, 30, 8, 0, 22, tzinfo=UTC).timestamp()
    assert server_time_of({}) is None
    assert server_time_of({"ResponseMetadata": {"HTTPHeaders": {"date": "yesterday"}}}) is None
    page = ScanPage([], 0.0, started=10.0, ended=12.5, server_time=2000.0)
    from ddb_backup.capture.full_backup import page_times

    assert page_times(page) == (1997.0, 2001.0)


def test_when_the_full_backups_check_never_ran_the_next_stream_write_puts_the_racer_back_on_top(
    monkeypatch: Any,
) -> None:
    # GIVEN the removal-in-the-window race, and a full backup that stopped before its racer check
    clock = Clock(60.0)
    inner = MemoryStore(clock=clock.utc)
    stream_writer(inner).process([put(A, {"v": {"S": "first"}}, seq=1, at=10.0), remove(A, seq=2, at=50.0)])
    clock.now = 102.0
    stream = stream_writer(inner)

    def removal_lands() -> None:
        stream.process([put(A, {"v": {"S": "again"}}, seq=3, at=99.0), remove(A, seq=4, at=101.0)])

    monkeypatch.setattr(ImageWriter, "_settle", lambda *args: None)
    writer = ImageWriter(StrikeBeforePut(inner, removal_lands), k.ItemNamer("bk", "orders", False), SCHEMA, None)  # type: ignore[arg-type]
    writer.write({"pk": {"S": "a"}, "v": {"S": "again"}}, 100.0, 101.0)
    # the image is current over the removal, but readers order that pair by the order of changes
    assert inner.head(KEY).metadata["event-name"] == "FULL_BACKUP"
    assert image_at(inner, KEY, 101.5) is None
    # WHEN the item's next record reaches a fresh container
    clock.now = 121.0
    report = stream_writer(inner).process([put(A, {"v": {"S": "later"}}, seq=5, at=120.0)])
    # THEN its look finds the removal behind the image and writes it again first: exact at every moment
    assert report.written == 1
    assert image_at(inner, KEY, 100.5) == {**A, "v": {"S": "again"}}
    assert image_at(inner, KEY, 101.5) is None
    assert image_at(inner, KEY, 120.0) == {**A, "v": {"S": "later"}}
