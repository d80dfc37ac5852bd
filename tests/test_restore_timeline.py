"""The state of one item at T from its versions (docs/format.md, "Reading")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ddb_backup.format.version_meta import StreamPosition, VersionMeta
from ddb_backup.restore.ranges import key_ranges, segment_ranges
from ddb_backup.restore.timeline import DEFAULT_MAX_LAG, state_at
from ddb_backup.store import VersionEntry
from ddb_backup.store.memory import MemoryStore

HOUR = 3600.0


def version(n: int, written: float, event: float | None, *, size: int = 10, marker: bool = False) -> VersionEntry:
    return VersionEntry(
        key="t/x",
        version_id=f"v{n}",
        last_modified=datetime.fromtimestamp(written, tz=UTC),
        size=size,
        is_latest=False,
        is_delete_marker=marker,
        etag=f"e{n}" if event is not None else None,
    )


class Reader:
    """Metadata by version id; counts reads."""

    def __init__(self, events: dict[str, float | None]) -> None:
        self.events, self.reads = events, 0

    def __call__(self, entry: VersionEntry) -> VersionMeta | None:
        self.reads += 1
        event = self.events[entry.version_id]
        return None if event is None else VersionMeta("MODIFY", event, "1")


def decide(versions: list[VersionEntry], at: float, events: dict[str, float | None]) -> tuple[str | None, int]:
    reader = Reader(events)
    state = state_at(versions, at, reader)
    assert state.metadata_reads == reader.reads
    return (state.version.version_id if state.version else None), reader.reads


def test_versions_written_well_before_t_need_no_metadata() -> None:
    versions = [version(1, 100, 99), version(2, 200, 199)]
    assert decide(versions, 1000, {}) == ("v2", 0)


def test_a_change_made_before_t_but_written_after_t_is_restored() -> None:
    # GIVEN the change of t=990 reached S3 at t=1500 (Lambda lag); S3's clock says "after T"
    versions = [version(1, 100, 99), version(2, 1500, 990), version(3, 1600, 1590)]
    # THEN the state at 1000 is version 2: one read for it, one for the first change after T
    assert decide(versions, 1000, {"v2": 990, "v3": 1590}) == ("v2", 2)


def test_reads_stop_at_the_first_change_after_t() -> None:
    versions = [version(1, 100, 99), version(2, 1500, 1400), version(3, 1600, 1590)]
    assert decide(versions, 1000, {"v2": 1400, "v3": 1590}) == ("v1", 1)


def test_versions_written_after_the_window_are_not_read() -> None:
    versions = [version(1, 100, 99), version(2, 1000 + DEFAULT_MAX_LAG + 1, 1e9)]
    assert decide(versions, 1000, {}) == ("v1", 0)


def test_same_second_changes_take_the_last_in_stream_order() -> None:
    versions = [version(1, 1000.2, 1000), version(2, 1000.4, 1000), version(3, 1000.6, 1001)]
    assert decide(versions, 1000, {"v1": 1000, "v2": 1000, "v3": 1001}) == ("v2", 3)


def test_a_tombstone_makes_the_item_absent_and_its_delete_marker_adds_nothing() -> None:
    versions = [version(1, 100, 99), version(2, 200, 199, size=0), version(3, 200, None, marker=True)]
    assert decide(versions, 1000, {}) == (None, 0)
    # a re-insert after the removal, written close to T
    versions.append(version(4, 1000.5, 1000))
    assert decide(versions, 1000, {"v4": 1000}) == ("v4", 1)


def test_our_delete_marker_in_the_uncertain_window_is_skipped_not_taken_as_a_delete() -> None:
    versions = [version(1, 100, 99), version(2, 1500, 1200, size=0), version(3, 1500, None, marker=True)]
    assert decide(versions, 1000, {"v2": 1200}) == ("v1", 1)


def test_original_tool_versions_fall_back_to_last_modified_and_say_so() -> None:
    versions = [version(1, 100, None), version(2, 999.5, None), version(3, 1000.5, None, marker=True)]
    state = state_at(versions, 1000, Reader({"v1": None, "v2": None}))
    assert state.version is not None and state.version.version_id == "v2" and state.legacy
    later = state_at(versions, 1001, Reader({"v1": None, "v2": None}))
    assert later.version is None  # the original tool's delete marker


def test_no_change_yet_means_absent() -> None:
    assert decide([version(1, 2000, 1999)], 1000, {"v1": 1999}) == (None, 1)
    assert decide([version(1, 1000 + 2 * DEFAULT_MAX_LAG, 1e9)], 1000, {}) == (None, 0)


@pytest.mark.parametrize("md5", [True, False])
def test_key_ranges_cover_every_key_exactly_once(md5: bool) -> None:
    store = MemoryStore()
    names = ["0", "00", "0f", "1", "ff", "fff", "a b", "A", "~", "é", "%2F", " ", "!", "zz", "8", "80"]
    for name in names:
        store.put("p/t/" + name, b"x", {})
    ranges = key_ranges("p/t/", md5_names=md5)
    seen = [entry.key for r in ranges for entry in r.list_versions(store)]
    assert sorted(seen) == sorted("p/t/" + name for name in names)
    shares = [[e.key for r in segment_ranges(ranges, s, 3) for e in r.list_versions(store)] for s in range(3)]
    assert sorted(key for share in shares for key in share) == sorted(seen)


def test_resuming_a_range_after_a_key_skips_what_is_done() -> None:
    store = MemoryStore()
    for name in ["a1", "a2", "a3"]:
        store.put("t/" + name, b"x", {})
    (whole,) = [r for r in key_ranges("t/", md5_names=False) if r.contains("t/a1")]
    assert [e.key for e in whole.list_versions(store, after="t/a1")] == ["t/a2", "t/a3"]


def test_iter_states_lists_ranges_in_parallel_and_marks_each_finished() -> None:
    from ddb_backup.restore.plan import PointInTime
    from ddb_backup.restore.state import iter_states, read_image

    store = MemoryStore(clock=lambda: datetime.fromtimestamp(100, tz=UTC))
    for name in ["a", "b", "c", "d"]:
        store.put("t/" + name, b'{"id":{"S":"' + name.encode() + b'"}}', {})
    ranges = key_ranges("t/", md5_names=False)
    seen = list(iter_states(store, ranges, PointInTime(at=1000), workers=4))
    states = [state for _, state in seen if state is not None]
    assert sorted(s.object_key for s in states) == ["t/a", "t/b", "t/c", "t/d"]
    assert sum(1 for _, state in seen if state is None) == len(ranges)
    assert read_image(store, states[0]) == {"id": {"S": states[0].object_key[-1]}}


def test_iter_states_reraises_a_listing_failure() -> None:
    from ddb_backup.restore.plan import PointInTime
    from ddb_backup.restore.state import iter_states
    from ddb_backup.store import StoreError

    class Broken(MemoryStore):
        def list_versions(self, prefix: str, *, key_marker: str | None = None):  # type: ignore[no-untyped-def]
            raise StoreError("injected listing failure")
            yield

    with pytest.raises(StoreError, match="injected"):
        list(iter_states(Broken(), key_ranges("t/", md5_names=False), PointInTime(at=1000)))


def test_the_state_carries_the_items_earliest_write_time_for_the_too_early_warning() -> None:
    versions = [version(1, 100, 99), version(2, 200, 199)]
    assert state_at(versions, 50, Reader({"v1": 99})).earliest == 100
    assert state_at([], 50, Reader({})).earliest is None


def test_a_full_backup_image_after_t_does_not_hide_a_lagging_stream_change_before_t() -> None:
    # GIVEN a scan image read at 1004 and written at 1005, and a stream change of 990 that reached S3
    # only at 1010 (the function lagged behind the full backup)
    fb = version(1, 1005, 1004)
    lagging = version(2, 1010, 990)

    def read(entry: VersionEntry) -> VersionMeta:
        if entry.version_id == "v1":
            return VersionMeta("FULL_BACKUP", 1004, writer="full-backup")
        return VersionMeta("MODIFY", 990, "7")

    # WHEN the state at 1000 is decided THEN the stream change is found behind the later scan image
    state = state_at([fb, lagging], 1000, read)
    assert state.version is not None and state.version.version_id == "v2"


def test_a_scan_image_applies_only_from_the_end_of_its_read() -> None:
    # GIVEN a stream change at 995 (written at 996) and a scan image whose page returned at 1000.4
    stream = version(1, 996, 995)
    scan = version(2, 1000.5, 1000.4)

    def read(entry: VersionEntry) -> VersionMeta:
        if entry.version_id == "v2":
            return VersionMeta("FULL_BACKUP", 1000.4, writer="full-backup")
        return VersionMeta("INSERT", 995, "5")

    # THEN before the read ended the stream's image holds, from then on the scan's
    assert state_at([stream, scan], 1000.2, read).version.version_id == "v1"  # type: ignore[union-attr]
    assert state_at([stream, scan], 1000.4, read).version.version_id == "v2"  # type: ignore[union-attr]


def test_a_delete_marker_after_a_later_image_is_the_original_tools_delete_even_after_our_tombstone() -> None:
    # GIVEN our removal (tombstone + marker), then the original tool's re-creation and its delete (rollback)
    versions = [
        version(1, 100, 99),
        version(2, 200, 199, size=0),
        version(3, 200, None, marker=True),
        version(4, 300, None),
        version(5, 400, None, marker=True),
    ]
    events = {"v1": 99, "v2": 199, "v4": None}
    # THEN the re-created image is in effect between them, and the original's delete after it
    assert decide(versions, 350, events)[0] == "v4"
    assert decide(versions, 450, events)[0] is None
    assert decide(versions, 250, events)[0] is None


def test_our_removal_listed_marker_first_within_one_second_is_still_one_removal() -> None:
    # GIVEN S3 listing our tombstone and its marker, written in the same second, the other way round
    versions = [version(1, 100, 99), version(3, 200, None, marker=True), version(2, 200.4, 199, size=0)]
    state = state_at(versions, 250, Reader({"v1": 99, "v2": 199}))
    assert state.version is None and state.decided_by is not None and state.decided_by.version_id == "v2"


# -- a full backup's image written over a removal that raced it (writing rule 4, "Reading") ---------

STREAM = "2026-11-27T00:00:00.000"


def stream_change(event: str, time: float, sequence: int) -> VersionMeta:
    return VersionMeta(event, time, str(sequence), stream=STREAM)


def scan_image(floor: float, time: float, follows: StreamPosition | None) -> VersionMeta:
    return VersionMeta("FULL_BACKUP", time, writer="full-backup", read_floor=floor, follows=follows)


def decide_metas(versions: list[VersionEntry], at: float, metas: dict[str, VersionMeta | None]) -> str | None:
    reads: list[str] = []

    def read_meta(entry: VersionEntry) -> VersionMeta | None:
        reads.append(entry.version_id)
        return metas[entry.version_id]

    state = state_at(versions, at, read_meta)
    assert state.metadata_reads == len(reads)
    return state.version.version_id if state.version else None


def test_an_image_left_current_over_a_racing_removal_does_not_resurrect_the_item() -> None:
    # GIVEN a new item's INSERT (t=62) and REMOVE (t=64) landed inside a full backup's look-then-write
    # window: its look saw nothing, its If-None-Match write passed the delete marker, and its check
    # that would have written the removal again after the image never succeeded (S3 faults, a crash)
    versions = [
        version(1, 64, 62),
        version(2, 64, 64, size=0),
        version(3, 64, None, marker=True),
        version(4, 64, 65),
    ]
    metas = {
        "v1": stream_change("INSERT", 62, 10),
        "v2": stream_change("REMOVE", 64, 20),
        "v4": scan_image(63, 65, None),
    }
    # THEN the removal, after the image in the order of changes, stays in effect for good
    for at in (65, 66, 100, 10_000):
        assert decide_metas(versions, at, metas) is None
    # and before the removal the item is there (the stream's INSERT)
    assert decide_metas(versions, 63, metas) == "v1"


def test_an_image_written_behind_a_later_racing_removal_holds_until_that_removal() -> None:
    # GIVEN a removal (t=220) raced a full backup whose image was read by t=216 (floor 214); the
    # image landed after the tombstone and its delete marker, and the removal was written again after it
    versions = [
        version(1, 10, 9),
        version(2, 222, 220, size=0),
        version(3, 222, None, marker=True),
        version(4, 222, 216),
        version(5, 222, 220, size=0),
        version(6, 222, None, marker=True),
    ]
    metas = {
        "v1": stream_change("INSERT", 9, 10),
        "v2": stream_change("REMOVE", 220, 20),
        "v4": scan_image(214, 216, StreamPosition(STREAM, 10, 9)),
        "v5": stream_change("REMOVE", 220, 20),
    }
    # THEN from the image time to the removal, the image (it may hold a change the stream lost)
    assert decide_metas(versions, 217, metas) == "v4"
    assert decide_metas(versions, 215, metas) == "v1"
    assert decide_metas(versions, 221, metas) is None


def test_a_re_insert_after_a_removal_costs_one_read_and_stays() -> None:
    versions = [version(1, 10, 9), version(2, 20, 20, size=0), version(3, 20, None, marker=True), version(4, 30, 30)]
    metas = {
        "v1": stream_change("INSERT", 9, 1),
        "v2": stream_change("REMOVE", 20, 2),
        "v4": stream_change("INSERT", 30, 3),
    }
    reads: list[str] = []

    def read_meta(entry: VersionEntry) -> VersionMeta | None:
        reads.append(entry.version_id)
        return metas[entry.version_id]

    state = state_at(versions, 1000, read_meta)
    assert state.version is not None and state.version.version_id == "v4"
    assert reads == ["v4"]


def test_a_racing_change_before_the_racing_removal_is_not_hidden_by_the_image() -> None:
    # GIVEN a change (t=101) and then a removal (t=110) both landed inside a full backup's window; its
    # image was read at or after 100 (floor), by 102, possibly before the change
    versions = [
        version(1, 10, 9),
        version(2, 101, 101),
        version(3, 110, 110, size=0),
        version(4, 110, None, marker=True),
        version(5, 110, 102),
    ]
    metas = {
        "v1": stream_change("INSERT", 9, 10),
        "v2": stream_change("MODIFY", 101, 20),
        "v3": stream_change("REMOVE", 110, 30),
        "v5": scan_image(100, 102, StreamPosition(STREAM, 10, 9)),
    }
    # THEN between the image time and the removal the stream's change, after the image, holds
    assert decide_metas(versions, 105, metas) == "v2"
    assert decide_metas(versions, 110, metas) is None
