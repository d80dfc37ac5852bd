"""Issue 12.1/12.2: a replay never makes an older image win, whatever container it lands on, and a
re-created table's new stream is not mistaken for replays (docs/format.md, writing rule 3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from builders import put, remove
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.store.memory import MemoryStore
from order_support import image_at

A = {"pk": {"S": "a"}}
SCHEMA = k.KeySchema("pk")
OLD_STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-27T00:00:00.000"
NEW_STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-28T09:30:00.000"
NOW = 1_764_000_000.0


def bucket() -> MemoryStore:
    """Writes land just after NOW (S3's LastModified), so restores read the versions' metadata."""
    return MemoryStore(clock=lambda: datetime.fromtimestamp(NOW + 0.5, tz=UTC))


def fresh_container(store: MemoryStore) -> Capture:
    return Capture(store, CaptureSettings(plain_text=True, workers=2), lambda table: SCHEMA)


def on_stream(raw: dict[str, Any], arn: str) -> dict[str, Any]:
    return {**raw, "eventSourceARN": arn}


def test_a_cold_container_handed_an_older_record_after_a_newer_one_was_written_skips_it() -> None:
    # GIVEN MODIFY seq 9 (t-200 s) written by one container
    store = bucket()
    first = fresh_container(store)
    assert not first.process([put(A, {"v": {"N": "9"}}, first=False, seq=9, at=NOW - 200)]).failures
    # WHEN a fresh container (empty replay memory) is handed MODIFY seq 5 (t-300 s), as a bisected retry
    report = fresh_container(store).process([put(A, {"v": {"N": "5"}}, first=False, seq=5, at=NOW - 300)])
    # THEN it looks at the object, sees seq 9, skips seq 5, and a restore at t-100 s returns seq 9's image
    assert report.failures == [] and report.replays_skipped == 1 and report.looks == 1
    assert image_at(store, "orders/a", NOW - 100) == {**A, "v": {"N": "9"}}


def test_a_bisected_first_half_retried_on_a_new_container_after_the_second_half_never_rewinds() -> None:
    # GIVEN a batch whose second half (seq 3: a removal) was written before the invocation timed out
    store = bucket()
    batch = [put(A, {"v": {"N": "1"}}, seq=1, at=NOW - 30), put(A, {"v": {"N": "2"}}, first=False, seq=2, at=NOW - 20)]
    fresh_container(store).process([remove(A, seq=3, at=NOW - 10)])
    # WHEN Lambda bisects and retries the first half on a fresh container, then drops the rest
    report = fresh_container(store).process(batch)
    # THEN the removal stays the newest change: the item is absent now, and present only before it
    assert report.replays_skipped == 2 and report.written == 0
    assert image_at(store, "orders/a", NOW) is None


def test_a_warm_container_remembers_the_object_and_looks_only_once() -> None:
    store = bucket()
    container = fresh_container(store)
    container.process([put(A, seq=1, at=NOW)])
    report = container.process([put(A, seq=1, at=NOW), put(A, {"v": {"N": "2"}}, first=False, seq=2, at=NOW + 1)])
    assert report.looks == 0 and report.replays_skipped == 1 and report.written == 1


def test_a_removed_item_is_looked_at_through_its_tombstone() -> None:
    # GIVEN an item removed at seq 7; WHEN a fresh container is handed the INSERT seq 4 again
    store = bucket()
    fresh_container(store).process([put(A, seq=4, at=NOW - 5), remove(A, seq=7, at=NOW)])
    report = fresh_container(store).process([put(A, seq=4, at=NOW - 5)])
    # THEN the removal stays newest
    assert report.replays_skipped == 1
    assert image_at(store, "orders/a", NOW + 10) is None


def test_a_re_created_tables_new_stream_is_written_although_its_sequence_numbers_are_lower() -> None:
    # GIVEN a warm function that backed up `orders` from stream A up to seq 900
    store = bucket()
    container = fresh_container(store)
    container.process([on_stream(put(A, {"v": {"S": "old"}}, seq=900, at=NOW - 100), OLD_STREAM)])
    # WHEN the table is created again (stream B, sequence numbers start lower) and the item written
    report = container.process([on_stream(put(A, {"v": {"S": "new"}}, seq=5, at=NOW), NEW_STREAM)])
    # THEN B's record is written, not skipped as a replay, and restore returns it
    assert report.written == 1 and report.replays_skipped == 0
    assert image_at(store, "orders/a", NOW + 1) == {**A, "v": {"S": "new"}}
    assert store.head("orders/a").metadata["stream"] == "2026-11-28T09:30:00.000"
    # AND a late record of the old stream, older than B's change, is not written over it
    late = container.process([on_stream(put(A, {"v": {"S": "late"}}, seq=901, at=NOW - 50), OLD_STREAM)])
    assert late.replays_skipped == 1
    assert image_at(store, "orders/a", NOW + 1) == {**A, "v": {"S": "new"}}


def test_across_streams_the_newer_label_wins_a_tie_of_event_time() -> None:
    old = vm.StreamPosition("2026-11-27T00:00:00.000", 900, NOW)
    new = vm.StreamPosition("2026-11-28T09:30:00.000", 5, NOW)
    assert new.after(old) and not old.after(new)
    assert vm.StreamPosition("L", 6, NOW - 9).after(vm.StreamPosition("L", 5, NOW))  # one stream: sequence only


def test_the_stream_label_comes_from_the_event_source_arn() -> None:
    assert vm.stream_label(NEW_STREAM) == "2026-11-28T09:30:00.000"
    assert vm.stream_label("arn:aws:dynamodb:us-east-1:1:table/orders") is None


def test_another_writer_between_the_look_and_the_write_is_seen_by_the_conditional_write() -> None:
    # GIVEN a warm container that remembers seq 1, and another container that then wrote seq 3
    store = bucket()
    warm = fresh_container(store)
    warm.process([put(A, seq=1, at=NOW)])
    fresh_container(store).process([put(A, {"v": {"N": "3"}}, first=False, seq=3, at=NOW + 3)])
    # WHEN the warm one is handed seq 2
    report = warm.process([put(A, {"v": {"N": "2"}}, first=False, seq=2, at=NOW + 2)])
    # THEN its If-Match on the remembered version fails, it looks again and leaves seq 3 newest
    assert report.replays_skipped == 1 and report.looks == 1
    assert json.loads(store.get("orders/a").body)["v"] == {"N": "3"}
