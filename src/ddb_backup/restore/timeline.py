"""The state of one item at time T, from its versions (docs/format.md, "Reading").

Pure: metadata is read through the ``read_meta`` callback, and only for versions whose S3 write
time cannot decide the question by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ddb_backup.store import VersionEntry
from ddb_backup.version_meta import VersionMeta

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

    @property
    def present(self) -> bool:
        return self.version is not None


@dataclass
class _Walk:
    at: float
    chosen: VersionEntry | None = None
    reads: int = 0
    legacy: bool = False

    def take(self, entry: VersionEntry, *, legacy: bool = False) -> None:
        present = not entry.is_delete_marker and entry.size > 0
        self.chosen = entry if present else None
        self.legacy = legacy


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
    first_tombstone = _first_tombstone_time(versions)
    for entry in versions:
        written = entry.last_modified.timestamp()
        if written > surely_after:
            break
        if entry.is_delete_marker and first_tombstone is not None and written >= first_tombstone:
            continue  # the second half of one of our removals: its tombstone already decided
        if written <= surely_before:
            walk.take(entry)
        elif not _uncertain(entry, walk, read_meta):
            break
    if not versions:
        return ItemState("", None)
    earliest = versions[0].last_modified.timestamp()
    return ItemState(versions[0].key, walk.chosen, walk.reads, walk.legacy, earliest)


def _uncertain(entry: VersionEntry, walk: _Walk, read_meta: ReadMeta) -> bool:
    """Decide a version written too close to T to tell from its write time; False: it is after T."""
    meta = None
    if not entry.is_delete_marker:
        meta = read_meta(entry)
        walk.reads += 1
    when = entry.last_modified.timestamp() if meta is None else meta.event_time
    if when > walk.at:
        return False
    walk.take(entry, legacy=meta is None)
    return True


def _first_tombstone_time(versions: Sequence[VersionEntry]) -> float | None:
    for entry in versions:
        if not entry.is_delete_marker and entry.size == 0:
            return entry.last_modified.timestamp()
    return None
