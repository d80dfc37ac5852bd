"""What changed in a table between two points in time, from the backup alone.

One listing serves both times: each object's versions are decided at ``from`` and at ``to`` together
(metadata read once per version). Same change in effect at both times: unchanged, no read. Otherwise
the object is read and resolved (``restore.resolve``): a stray object is skipped and counted; ours
under its canonical name, present at ``from``, is compared as it is; any other object (the original
tool's, one of an item's other names, or an item new at ``to``) is merged with the item's other names,
and the change is reported once, by the object holding the item's change in effect at ``to``. An
item moved between tenant folders is one item when the whole table is diffed (``_Diff._may_have_moved``).
An identical image written again is unchanged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ddb_backup.format.keys import KeySchema
from ddb_backup.format.version_meta import INSERT, REMOVED_BY_TENANT_CHANGE, MetadataError, VersionMeta
from ddb_backup.inspect.images import AttributeChanges, attribute_changes, image_digest, item_key, map_bounded
from ddb_backup.restore.plan import group_versions, metadata_reader
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.resolve import Change, Inspected, Resolver, parse_image, resolver_for
from ddb_backup.restore.state import DEFAULT_LIST_WORKERS, map_ranges
from ddb_backup.restore.timeline import DEFAULT_MAX_LAG, ItemState, ReadMeta, state_at
from ddb_backup.store import NoSuchVersion, ObjectStore, VersionEntry

ADDED, REMOVED, CHANGED, UNCHANGED = "added", "removed", "changed", "unchanged"
_MD5_NAME = re.compile(r"[0-9a-f]{32}")


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

    @property
    def touched(self) -> bool:
        """The object has a change between the two times (even one that leaves it absent at both)."""
        first, last = self.before.decided_by, self.after.decided_by
        if first is None or last is None:
            return first is not last
        return first.version_id != last.version_id


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
    skipped: int = 0  # objects that are not items of the table (see the resolver's skips)

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
    resolver: Resolver | None = None,
    prefix: str = "",
    table: str | None = None,
) -> Iterator[ItemChange]:
    """The items added, removed and changed from ``start`` to ``end``; ``counts`` fills as they go by.
    ``resolver`` (or ``prefix`` and ``table`` to make one; without them, the ranges' folder is taken as
    the table's) decides which objects are the table's items and merges an item's names."""
    if resolver is None:
        resolver = _resolver(store, ranges, schema, prefix, table)
    diff = _Diff(resolver, start, end, max_lag, ranges)
    listing = _Listing(store, ranges, start, end, max_lag, workers, counts)
    for _, change in map_bounded(diff.compare, listing.pairs(), workers=read_workers):
        if change is None:
            counts.count(UNCHANGED)
        elif isinstance(change, ItemChange):
            counts.count(change.kind)
            yield change
    if listing.orphans:  # the original tool's deletes under names that never held a version: whose?
        orphans = listing.orphans
        for _, change in map_bounded(lambda pair: diff.deleted_elsewhere(pair, orphans), listing.unchanged_md5()):
            if isinstance(change, ItemChange):
                counts.unchanged -= 1
                counts.count(change.kind)
                yield change
    counts.skipped = resolver.skips.total
    counts.unchanged -= diff.counted_twice


@dataclass
class _Listing:
    """The table's objects, each decided at both times (one listing per pass)."""

    store: ObjectStore
    ranges: Sequence[KeyRange]
    start: float
    end: float
    max_lag: float
    workers: int
    counts: DiffCounts
    orphans: set[str] = field(default_factory=set)  # see _orphan_delete

    def _all(self) -> Iterator[tuple[ItemPair, int]]:
        def work(key_range: KeyRange) -> Iterator[tuple[ItemPair, int]]:
            return range_pairs(self.store, key_range, self.start, self.end, max_lag=self.max_lag)

        for _, result in map_ranges(self.ranges, work, self.workers):
            if result is not None:
                yield result

    def pairs(self) -> Iterator[ItemPair]:
        """The objects with something at either time, or a change between them."""
        for pair, reads in self._all():
            self.counts.metadata_reads += reads
            if _orphan_delete(pair):
                self.orphans.add(pair.object_key)
            if pair.before.present or pair.after.present or pair.touched:
                yield pair

    def unchanged_md5(self) -> Iterator[ItemPair]:
        """The objects with an MD5 name holding the same present version at both times (a second listing)."""
        for pair, _ in self._all():
            if pair.same_version and pair.before.present and _MD5_NAME.fullmatch(_name(pair.object_key)):
                yield pair


def _name(object_key: str) -> str:
    return object_key.rsplit("/", 1)[-1]


def _orphan_delete(pair: ItemPair) -> bool:
    """A delete marker between the times on an MD5 name that held no item at either time and whose change
    in effect at the start (if any) was a delete marker too: the original tool deleted an item under the
    key order its Lambda hashed, while another order's name holds the item's image."""
    first, last = pair.before.decided_by, pair.after.decided_by
    if pair.before.present or pair.after.present or last is None or not last.is_delete_marker:
        return False
    if first is not None and (not first.is_delete_marker or first.version_id == last.version_id):
        return False
    return _MD5_NAME.fullmatch(_name(pair.object_key)) is not None


def _resolver(
    store: ObjectStore, ranges: Sequence[KeyRange], schema: KeySchema | None, prefix: str, table: str | None
) -> Resolver:
    if table is not None:
        return resolver_for(store, prefix, table, schema)
    folder = ranges[0].prefix if ranges else "/"
    resolver = Resolver(store, "", "x", schema)
    resolver.folders = [folder, "/" + folder]
    return resolver


NOT_MINE = object()  # another name of the item reports its change


class _Diff:
    def __init__(
        self, resolver: Resolver, start: float, end: float, max_lag: float, ranges: Sequence[KeyRange] = ()
    ) -> None:
        self.resolver, self.start, self.end, self.max_lag = resolver, start, end, max_lag
        self.ranges = ranges  # the diff's: only names in them were counted
        self.counted_twice = 0  # other names of a changed item, counted unchanged without being read
        self._lock = threading.Lock()
        # the diff covers the table's folders (not one tenant's): an item moved between tenant folders is
        # one item, reported once (docs/format.md, "Buckets written by the original tool")
        self.whole_table = not ranges or any(r.prefix in resolver.folders for r in ranges)

    def _may_have_moved(self, found: Inspected, pair: ItemPair) -> bool:
        """Whether the object's change may be half of a tenant move, seen from its own versions and the
        metadata already read: it left by our ``tenant-change`` removal; or it holds an image at the end
        that is not an insert, while it held nothing (or a version of the original tool, which leaves an
        item's old tenant folder as it was) at the start. Only these pay for looking in every tenant
        folder (one LIST per name per tenant folder)."""
        if not self.whole_table or not found.where.tenant:
            return False
        if not pair.after.present:
            return self._moved_out(pair)
        if pair.before.present and not pair.before.legacy:
            return False
        return found.meta is None or found.meta.event_name != INSERT

    def _moved_out(self, pair: ItemPair) -> bool:
        decided = pair.after.decided_by
        if decided is None or decided.is_delete_marker:
            return False
        meta = pair.after.decided_meta
        if meta is None:
            try:
                meta = VersionMeta.from_s3(self.resolver.store.head(decided.key, decided.version_id).metadata)
            except (NoSuchVersion, MetadataError):
                return False
        return meta is not None and meta.removed_by == REMOVED_BY_TENANT_CHANGE

    def _moved_change(self, found: Inspected, pair: ItemPair) -> ItemChange | object | None:
        """The item's change over its names in every tenant folder, reported by the name holding its change
        in effect at the end (by the format's order: a tenant-change removal is before the new tenant's
        image of the same change), or by this name when the item is absent at the end and this name
        held it last (it left, then its new folder removed it too: a removal all the same)."""
        names = [found.object_key, *self.resolver.other_names(found, every_tenant=True)]
        first, last = self._latest(names, self.start), self._latest(names, self.end)
        if last is None:
            return NOT_MINE
        if last.present and last.object_key != found.object_key:
            return NOT_MINE
        if last.present and (pair.after.version is None or last.entry.version_id != pair.after.version.version_id):
            return NOT_MINE
        held_first = first is not None and first.present and first.object_key == found.object_key
        if not last.present and not held_first and last.object_key != found.object_key:
            return NOT_MINE
        change = _change(
            found.object_key, self.resolver.image_of(first), self.resolver.image_of(last), self.resolver.schema
        )
        if change is not NOT_MINE:
            self._count_unchanged(found.object_key, names)
        return change

    def _latest(self, names: list[str], at: float) -> Change | None:
        best: Change | None = None
        for name in dict.fromkeys(names):
            change = self.resolver.change_at(name, at, self.max_lag)
            if change is not None and (best is None or change.order > best.order):
                best = change
        return best

    def compare(self, pair: ItemPair) -> ItemChange | object | None:
        """The item's change, None when unchanged, NOT_MINE when another name (or nobody) reports it."""
        if pair.same_version and pair.before.present:
            return None  # the same image at both times: nothing is read
        found = self._inspect(pair)
        if found is None:
            return NOT_MINE
        if self._may_have_moved(found, pair):
            return self._moved_change(found, pair)
        if found.canonical and pair.before.present:
            return self._canonical_change(found, pair)
        return self._merged_change(found, pair)

    def _canonical_change(self, found: Inspected, pair: ItemPair) -> ItemChange | object | None:
        """Our canonical object, present at the start, reports the item."""
        resolver = self.resolver
        after = self._image(found, pair.after)
        if not pair.after.present and self._held_elsewhere_at_end(found):
            # our canonical object was removed: another name may hold the item again at the end (the
            # original tool re-created it after a rollback), which its own name does not report
            last = resolver.winner(found, pair.after, self.end, max_lag=self.max_lag)
            if last is not None and last.present and last.object_key != found.object_key:
                after = resolver.image_of(last)
        change = _change(found.object_key, self._image(found, pair.before), after, resolver.schema)
        if isinstance(change, ItemChange):
            self._other_names_unchanged(found)
        return change

    def _held_elsewhere_at_end(self, found: Inspected) -> bool:
        """Whether another name of the item holds an image at the end (one LIST per name)."""
        for name in self.resolver.other_names(found):
            change = self.resolver.change_at(name, self.end, self.max_lag)
            if change is not None and change.present:
                return True
        return False

    def _merged_change(self, found: Inspected, pair: ItemPair) -> ItemChange | object | None:
        """Another name: it reports the item only when it holds the item's change in effect at the end."""
        resolver = self.resolver
        if not found.canonical and resolver.canonical_present(found, self.start, max_lag=self.max_lag):
            return NOT_MINE  # our canonical object was present at the start: it reports the item
        first = resolver.winner(found, pair.before, self.start, max_lag=self.max_lag)
        last = resolver.winner(found, pair.after, self.end, max_lag=self.max_lag)
        own_last = pair.after.decided_by
        if last is None or own_last is None or last.object_key != found.object_key:
            return NOT_MINE
        if last.entry.version_id != own_last.version_id:
            return NOT_MINE
        change = _change(found.object_key, resolver.image_of(first), resolver.image_of(last), resolver.schema)
        if change is not NOT_MINE:
            self._other_names_unchanged(found)
        return change

    def deleted_elsewhere(self, pair: ItemPair, orphans: set[str]) -> ItemChange | object | None:
        """An object counted unchanged unread (same version at both times) whose item one of the ``orphans``
        deleted (one GET, then the merge's LISTs, only for items with an orphan among their names)."""
        version = pair.before.version
        if version is None:
            return None
        try:
            stored = self.resolver.store.get(pair.object_key, version.version_id)
        except NoSuchVersion:
            return None
        found = self.resolver.inspect(pair.object_key, stored)
        if not isinstance(found, Inspected) or not orphans.intersection(self.resolver.other_names(found)):
            return None
        first = self.resolver.winner(found, pair.before, self.start, max_lag=self.max_lag)
        last = self.resolver.winner(found, pair.after, self.end, max_lag=self.max_lag)
        if first is None or first.object_key != found.object_key or last is None or last.object_key not in orphans:
            return None  # another name reports the item (or it was not this name's at the start)
        return _change(found.object_key, self.resolver.image_of(first), None, self.resolver.schema)

    def _other_names_unchanged(self, found: Inspected) -> None:
        """Every other name of the item (in the diff's ranges) holding the same present version at both
        times was counted unchanged unread, while this name reports the item: count the item once (two
        LISTs per such name; only for items whose names are merged, or whose canonical object changed).
        When a name in the item's tenant folder holds a version of the original tool, the item's names in
        every other tenant folder are looked at too: the original tool left an item's old tenant folder
        as it was when its tenant changed (restore looks there for such versions as well)."""
        names = self.resolver.other_names(found)
        legacy = self._count_unchanged(found.object_key, names)
        if legacy and found.where.tenant and found.meta is not None:
            others = self.resolver.other_names(found, every_tenant=True)
            self._count_unchanged(found.object_key, [name for name in others if name not in names])

    def _count_unchanged(self, own: str, names: list[str]) -> bool:
        """Count the names present with the same version at both times; whether any holds a version of
        the original tool at the start."""
        legacy = False
        for name in names:
            if name == own or not any(r.contains(name) and name.startswith(r.prefix) for r in self.ranges):
                continue
            first = self.resolver.change_at(name, self.start, self.max_lag)
            if first is None or not first.present:
                continue
            legacy = legacy or first.meta is None
            last = self.resolver.change_at(name, self.end, self.max_lag)
            if last is not None and last.entry.version_id == first.entry.version_id:
                with self._lock:
                    self.counted_twice += 1
        return legacy

    def _inspect(self, pair: ItemPair) -> Inspected | None:
        state = pair.after if pair.after.present else pair.before
        if state.version is not None:
            try:
                stored = self.resolver.store.get(state.object_key, state.version.version_id)
            except NoSuchVersion:
                return None
            found = self.resolver.inspect(state.object_key, stored)
            return found if isinstance(found, Inspected) else None
        if pair.after.decided_by is None:
            return None
        return self.resolver.inspect_removal(pair.after.object_key, pair.after.decided_by)

    def _image(self, found: Inspected, state: ItemState) -> dict[str, Any] | None:
        if state.version is None:
            return None
        if state.version.version_id == found.stored.version_id:
            return found.image
        try:
            body = self.resolver.store.get(state.object_key, state.version.version_id).body
        except NoSuchVersion:
            return None
        return parse_image(body)[0]


def _change(
    object_key: str, before: dict[str, Any] | None, after: dict[str, Any] | None, schema: KeySchema | None
) -> ItemChange | object | None:
    if before is None and after is None:
        return NOT_MINE  # absent at both times: not an item of this diff
    if before is not None and after is not None and image_digest(before) == image_digest(after):
        return None
    kind = ADDED if before is None else REMOVED if after is None else CHANGED
    image = after if after is not None else before
    key = item_key(image, schema) if schema is not None and image is not None else None
    return ItemChange(object_key, kind, key, attribute_changes(before, after))
