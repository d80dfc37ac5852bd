"""The state of one item at time T, from its versions (docs/format.md, "Reading").

Pure: metadata is read through the ``read_meta`` callback, and only for versions whose S3 write
time cannot decide the question by itself, and for a scan image written directly over a removal
(``_settle_raced_removal``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ddb_backup.format.version_meta import FULL_BACKUP, VersionMeta
from ddb_backup.store import VersionEntry

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
    stop_meta: VersionMeta | None = None  # the metadata of the version the walk stopped at

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
    stopped_at: int | None = None
    for index, entry in enumerate(versions):
        written = entry.last_modified.timestamp()
        if written > surely_after:
            break
        if index in halves:
            continue  # the second half of one of our removals: its tombstone already decided
        if written <= surely_before:
            walk.take(entry)
        elif not _uncertain(entry, walk, read_meta):
            stopped_at = index
            break
    _settle_raced_removal(versions, walk, read_meta, stopped_at, surely_after)
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
        walk.stop_meta = meta
        return meta is not None and meta.event_name == FULL_BACKUP
    walk.take(entry, legacy=meta is None, meta=meta)
    return True


def _settle_raced_removal(
    versions: Sequence[VersionEntry],
    walk: _Walk,
    read_meta: ReadMeta,
    stopped_at: int | None,
    surely_after: float,
) -> None:
    """A full backup's image written directly over one of our removals may have been written *over* it:
    the removal landed inside the backup's look-then-write window and ``If-None-Match`` passes a delete
    marker (docs/format.md, writing rule 4). The backup then writes the removal again after its image,
    but that can fail for good (S3 faults, a crash). So the pair is ordered by the order of changes,
    not by write order: a tombstone that is a stream change after the image's ``follows`` position and
    at or after its read floor is after the image. Two cases need it: the walk took the image (the
    removal, if at or before T, wins: no resurrection), or it stopped at the tombstone, after T (the
    image, if at or before T, holds until the removal). Costs one read of the object version after a
    removal (two when it is a scan image), only when it decides the state."""
    taken = walk.decided_by
    pair = _removal_then_object(versions, walk, stopped_at)
    if pair is None:
        return
    tombstone_index, image_index = pair
    if versions[image_index].last_modified.timestamp() > surely_after:
        return
    image_entry, tombstone_entry = versions[image_index], versions[tombstone_index]
    known = walk.decided_meta if taken is image_entry else None
    image = known if known is not None else _read(image_entry, walk, read_meta)
    if image is None or not image.is_image_of_scan:
        return
    removal = walk.stop_meta if stopped_at == tombstone_index else None
    removal = removal if removal is not None else _read(tombstone_entry, walk, read_meta)
    position = None if removal is None else removal.position
    if removal is None or position is None or not removal.is_removal or not removal.after(image):
        return
    if image.follows is not None and not position.after(image.follows):
        return  # the image's look saw this removal: not a racer
    if removal.event_time <= walk.at:
        walk.take(tombstone_entry, meta=removal)
    elif image.event_time <= walk.at and not _racer_after(walk, image, read_meta):
        walk.take(image_entry, meta=image)


def _racer_after(walk: _Walk, image: VersionMeta, read_meta: ReadMeta) -> bool:
    """Is the change the walk took (written before the racing removal) a stream change after ``image``
    in the order of changes? Then it raced the image too, and holds until the removal."""
    taken = walk.decided_by
    if taken is None or taken.is_delete_marker:
        return False
    meta = walk.decided_meta if walk.decided_meta is not None else _read(taken, walk, read_meta)
    return meta is not None and meta.position is not None and meta.after(image)


def _removal_then_object(
    versions: Sequence[VersionEntry], walk: _Walk, stopped_at: int | None
) -> tuple[int, int] | None:
    """``(tombstone, object version after it)`` positions when the walk stopped at a tombstone, or took
    an object version whose nearest object version before it is a tombstone; else ``None``."""
    if stopped_at is not None and _is_tombstone(versions[stopped_at]):
        following = _next_object(versions, stopped_at)
        return None if following is None else (stopped_at, following)
    taken = walk.decided_by
    if taken is None or taken.is_delete_marker or taken.size == 0:
        return None
    index = next(i for i, entry in enumerate(versions) if entry.version_id == taken.version_id)
    before = _previous_object(versions, index)
    return None if before is None or not _is_tombstone(versions[before]) else (before, index)


def _is_tombstone(entry: VersionEntry) -> bool:
    return not entry.is_delete_marker and entry.size == 0


def _read(entry: VersionEntry, walk: _Walk, read_meta: ReadMeta) -> VersionMeta | None:
    walk.reads += 1
    return read_meta(entry)


def _next_object(versions: Sequence[VersionEntry], index: int) -> int | None:
    """The first object version (not a delete marker) written after ``versions[index]``."""
    return next((i for i in range(index + 1, len(versions)) if not versions[i].is_delete_marker), None)


def _previous_object(versions: Sequence[VersionEntry], index: int) -> int | None:
    """The last object version (not a delete marker) written before ``versions[index]``."""
    return next((i for i in range(index - 1, -1, -1) if not versions[i].is_delete_marker), None)


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
