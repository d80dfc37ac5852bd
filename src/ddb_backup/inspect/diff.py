"""What changed in a table between two points in time, from the backup alone.

One listing serves both times: each item's versions are decided at ``from`` and at ``to`` together
(metadata read once per version). Same chosen version: unchanged, no read. Otherwise, when both
times have an image, both are read and compared (an identical image written again is unchanged).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ddb_backup.inspect.images import AttributeChanges, attribute_changes, image_digest, item_key, map_bounded
from ddb_backup.keys import KeySchema
from ddb_backup.restore.plan import group_versions, metadata_reader
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.state import DEFAULT_LIST_WORKERS, map_ranges, read_image
from ddb_backup.restore.timeline import DEFAULT_MAX_LAG, ItemState, ReadMeta, state_at
from ddb_backup.store import ObjectStore, VersionEntry
from ddb_backup.version_meta import VersionMeta

ADDED, REMOVED, CHANGED, UNCHANGED = "added", "removed", "changed", "unchanged"


@dataclass(frozen=True)
class ItemPair:
    """One item's state at ``from`` and at ``to``."""

    before: ItemState
    after: ItemState

    @property
    def object_key(self) -> str:
        return self.before.object_key

    @property
    def same_version(self) -> bool:
        if self.before.version is None or self.after.version is None:
            return self.before.version is self.after.version
        return self.before.version.version_id == self.after.version.version_id


@dataclass(frozen=True)
class ItemChange:
    object_key: str
    kind: str  # added, removed, changed
    key: dict[str, Any] | None
    changes: AttributeChanges

    def as_dict(self) -> dict[str, Any]:
        return {"object_key": self.object_key, "kind": self.kind, "key": self.key, **self.changes.as_dict()}


@dataclass
class DiffCounts:
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    metadata_reads: int = 0

    def count(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def states_at_two(
    versions: Sequence[VersionEntry], start: float, end: float, read: ReadMeta, *, max_lag: float = DEFAULT_MAX_LAG
) -> tuple[ItemPair, int]:
    """One item decided at two times from one listing; each version's metadata read at most once.
    Returns the pair and the number of metadata reads."""
    seen: dict[str, VersionMeta | None] = {}

    def cached(entry: VersionEntry) -> VersionMeta | None:
        if entry.version_id not in seen:
            seen[entry.version_id] = read(entry)
        return seen[entry.version_id]

    before = state_at(versions, start, cached, max_lag=max_lag)
    after = state_at(versions, end, cached, max_lag=max_lag)
    return ItemPair(before, after), len(seen)


def range_pairs(
    store: ObjectStore, key_range: KeyRange, start: float, end: float, *, max_lag: float = DEFAULT_MAX_LAG
) -> Iterator[tuple[ItemPair, int]]:
    read = metadata_reader(store)
    for versions in group_versions(key_range.list_versions(store)):
        yield states_at_two(versions, start, end, read, max_lag=max_lag)


def diff_table(
    store: ObjectStore,
    ranges: Sequence[KeyRange],
    start: float,
    end: float,
    counts: DiffCounts,
    *,
    schema: KeySchema | None = None,
    max_lag: float = DEFAULT_MAX_LAG,
    workers: int = DEFAULT_LIST_WORKERS,
    read_workers: int = 16,
) -> Iterator[ItemChange]:
    """The items added, removed and changed from ``start`` to ``end``; ``counts`` fills as they go by."""

    def pairs() -> Iterator[ItemPair]:
        def work(key_range: KeyRange) -> Iterator[tuple[ItemPair, int]]:
            return range_pairs(store, key_range, start, end, max_lag=max_lag)

        for _, result in map_ranges(ranges, work, workers):
            if result is None:
                continue
            pair, reads = result
            counts.metadata_reads += reads
            if pair.before.present or pair.after.present:
                yield pair

    for _, change in map_bounded(lambda pair: compare(store, pair, schema), pairs(), workers=read_workers):
        counts.count(UNCHANGED if change is None else change.kind)
        if change is not None:
            yield change


def compare(store: ObjectStore, pair: ItemPair, schema: KeySchema | None = None) -> ItemChange | None:
    """The item's change between the two states, None when unchanged (same version: nothing is read)."""
    if pair.same_version:
        return None
    before, after = read_image(store, pair.before), read_image(store, pair.after)
    if before is not None and after is not None and image_digest(before) == image_digest(after):
        return None
    kind = ADDED if before is None else REMOVED if after is None else CHANGED
    image = after if after is not None else before
    key = item_key(image, schema) if schema is not None and image is not None else None
    return ItemChange(pair.object_key, kind, key, attribute_changes(before, after))
