"""The state of one item at time T, from its versions (docs/format.md, "Reading").

Pure: metadata is read through the ``read_meta`` callback, and only for versions whose S3 write
time cannot decide the question by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ddb_backup.store import VersionEntry
from ddb_backup.version_meta import FULL_BACKUP, VersionMeta

STREAM_RETENTION = 24 * 3600.0
DEFAULT_MARGIN = 3600.0
DEFAULT_MAX_LAG = STREAM_RETENTION + DEFAULT_MARGIN
LAST_MODIFIED_RESOLUTION = 1.0  # S3 keeps LastModified to the second

ReadMeta = Callable[[VersionEntry], VersionMeta | None]


@dataclass(frozen=True)
class ItemState:
    """What one object key held at T: the version to restore, or ``None`` when the item was absent."""

    object_key: str
    version: VersionEntry | None
    metadata_reads: int = 0
    legacy: bool = False  # decided by LastModified: a version or delete marker of the original tool
    earliest: float | None = None  # LastModified of the item's oldest version (epoch seconds)
    decided_by: VersionEntry | None = None  # the change in effect at T (image, tombstone or marker)
    decided_meta: VersionMeta | None = None  # its metadata, when it was read

    @property
    def present(self) -> bool:
        return self.version is not None


@dataclass
class _Walk:
    at: float
    chosen: VersionEntry | None = None
    reads: int = 0
    legacy: bool = False
    decided_by: VersionEntry | None = None
    decided_meta: VersionMeta | None = None

    def take(self, entry: VersionEntry, *, legacy: bool = False, meta: VersionMeta | None = None) -> None:
        present = not entry.is_delete_marker and entry.size > 0
        self.chosen = entry if present else None
        self.legacy = legacy
        self.decided_by, self.decided_meta = entry, meta


def state_at(
    versions: Sequence[VersionEntry],
    at: float,
    read_meta: ReadMeta,
    *,
    max_lag: float = DEFAULT_MAX_LAG,
) -> ItemState:
    """``versions`` of one key, oldest first (S3 order reversed)."""
    walk = _Walk(at)
    surely_before = at - LAST_MODIFIED_RESOLUTION
    surely_after = at + max_lag
    halves = removal_halves(versions)
    for index, entry in enumerate(versions):
        written = entry.last_modified.timestamp()
        if written > surely_after:
            break
        if index in halves:
            continue  # the second half of one of our removals: its tombstone already decided
        if written <= surely_before:
            walk.take(entry)
        elif not _uncertain(entry, walk, read_meta):
            break
    if not versions:
        return ItemState("", None)
    earliest = versions[0].last_modified.timestamp()
    return ItemState(
        versions[0].key, walk.chosen, walk.reads, walk.legacy, earliest, walk.decided_by, walk.decided_meta
    )


def _uncertain(entry: VersionEntry, walk: _Walk, read_meta: ReadMeta) -> bool:
    """Decide a version written too close to T to tell from its write time; False: it and every later
    stream version are after T.

    A full backup's image after T does not end the walk: the stream writer may lag behind a scan, so
    a stream change made before T can reach S3 after a scan image read after T.
    """
    meta = None
    if not entry.is_delete_marker:
        meta = read_meta(entry)
        walk.reads += 1
    when = entry.last_modified.timestamp() if meta is None else meta.event_time
    if when > walk.at:
        return meta is not None and meta.event_name == FULL_BACKUP
    walk.take(entry, legacy=meta is None, meta=meta)
    return True


def removal_halves(versions: Sequence[VersionEntry]) -> set[int]:
    """Positions (in ``versions``, oldest first) of the delete markers that are the second half of one of
    our removals: the nearest version before the marker is a tombstone, or a tombstone was written in the
    same second as the marker (S3's second-resolution write times may list the pair either way round).

    Every other delete marker is a delete of the original tool, effective at its ``LastModified``, even
    after our tombstones: a rollback to the original tool deletes that way (docs/format.md, "Reading").
    """
    tombstone_seconds = {
        int(entry.last_modified.timestamp()) for entry in versions if not entry.is_delete_marker and entry.size == 0
    }
    halves: set[int] = set()
    previous: VersionEntry | None = None
    for index, entry in enumerate(versions):
        if not entry.is_delete_marker:
            previous = entry
            continue
        after_tombstone = previous is not None and previous.size == 0
        if after_tombstone or int(entry.last_modified.timestamp()) in tombstone_seconds:
            halves.add(index)
    return halves
