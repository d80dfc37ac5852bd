"""Planning for restore with the chosen version read once: its GET carries its metadata.

The planner reads the metadata of the versions S3's write time cannot place (``timeline``). When such a
version is the item's last one that could be in effect at T and its body is small, it is read with a
GET instead of a HEAD (the same request, and the answer carries the same metadata): if the walk takes
it, the restore writes that body and reads the version no second time. Larger bodies are read with a
HEAD, as before (a GET of a version the walk may not take would move its whole body). So an item
changed after T costs at most one request beyond its body (docs/format.md, "Reading").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ddb_backup.format.version_meta import VersionMeta
from ddb_backup.restore.plan import PointInTime, group_versions
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.timeline import ItemState, ReadMeta, state_at
from ddb_backup.store import NoSuchVersion, ObjectStore, StoredObject, VersionEntry

SMALL_BODY = 64 * 1024  # bytes: a GET this small costs about what a HEAD costs


@dataclass(frozen=True)
class Planned:
    """One item's state at T, and its chosen version when the planner already read it whole."""

    state: ItemState
    stored: StoredObject | None = None


def plan_range_once(
    store: ObjectStore, key_range: KeyRange, when: PointInTime, *, after: str | None = None
) -> Iterator[Planned]:
    """Every item of one key range, in key order (as ``plan.plan_range``), each with its chosen version's
    body and metadata when the walk read it with a GET."""
    for versions in group_versions(key_range.list_versions(store, after=after)):
        read: dict[str, StoredObject] = {}
        state = state_at(versions, when.at, _reader(store, versions, when, read), max_lag=when.max_lag)
        chosen = state.version
        yield Planned(state, None if chosen is None else read.get(chosen.version_id))


def _reader(
    store: ObjectStore, versions: Sequence[VersionEntry], when: PointInTime, read: dict[str, StoredObject]
) -> ReadMeta:
    """Metadata of one version (HEAD), or of the last candidate with a small body (GET, kept in ``read``)."""
    last = _last_candidate(versions, when)

    def read_meta(entry: VersionEntry) -> VersionMeta | None:
        try:
            if entry is last and 0 < entry.size <= SMALL_BODY:
                stored = read[entry.version_id] = store.get(entry.key, entry.version_id)
            else:
                stored = store.head(entry.key, entry.version_id)
        except NoSuchVersion:
            return None  # gone since listing (lifecycle expiry): decided by its write time
        return VersionMeta.from_s3(stored.metadata)

    return read_meta


def _last_candidate(versions: Sequence[VersionEntry], when: PointInTime) -> VersionEntry | None:
    """The newest object version written at or before T + the longest lag (none after it can be in
    effect at T): once the walk reads it, no later version supersedes it."""
    surely_after = when.at + when.max_lag
    candidates = [entry for entry in versions if entry.last_modified.timestamp() <= surely_after]
    last = candidates[-1] if candidates else None
    return None if last is None or last.is_delete_marker else last
