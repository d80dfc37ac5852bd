"""What a bucket holds: its tables (and tenants), with item and version counts and the time covered.

Folders are found by seeking: one listing request per folder, each starting just past the previous
folder's keys (no delimiter listing needed, so any ``ObjectStore`` will do). Each table is then listed
once, its key ranges in parallel, in every folder that holds it (ours, and the original tool's
leading-``/`` folder). Times are S3 write times (``LastModified``): event times would need one HEAD per
version.

Which objects are the table's (``restore.resolve``): an object right under the table's folder is counted
unread. A sub-folder is a tenant when the first object in it with an image belongs there as a tenant
(one GET per sub-folder); otherwise (an original plain-text name with ``/``, another stack's folder, a
stray object) each object in it is read once (GET of its newest image) and counted where it belongs, or
skipped. Counts are per object: an item kept under two names (an upgrade in place) counts twice.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ddb_backup.format import keys as k
from ddb_backup.format.version_meta import Tenancy, epoch_to_iso
from ddb_backup.restore.plan import group_versions, table_ranges
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.resolve import Inspected, Resolver, resolver_for
from ddb_backup.restore.state import DEFAULT_LIST_WORKERS, map_ranges
from ddb_backup.store import NoSuchVersion, ObjectStore, VersionEntry

OWN_FOLDER = "~ddb-backup"
_AFTER_SLASH = "0"  # the character after "/" in byte order: "name0" sorts after every "name/..." key


def _children(store: ObjectStore, prefix: str) -> Iterator[tuple[str | None, VersionEntry]]:
    """What is right under ``prefix`` (ending in ``/`` or empty), in key order, one listing request per
    step: ``(name, entry)`` for a folder (seeked past), ``(None, entry)`` for an object (its newest
    version)."""
    marker: str | None = None
    while True:
        # Past the marker only: a listing that repeats the marker key (moto, for a key with several
        # versions) must not make the seek stand still.
        listing = store.list_versions(prefix, key_marker=marker)
        entry = next((e for e in listing if marker is None or e.key.encode() > marker.encode()), None)
        if entry is None:
            return
        name, slash, _ = entry.key[len(prefix) :].partition("/")
        if slash:
            yield name, entry
            marker = prefix + name + _AFTER_SLASH
        else:
            yield None, entry
            marker = entry.key  # an object, not a folder: step past it


def folders(store: ObjectStore, prefix: str) -> Iterator[str]:
    """The names of the folders right under ``prefix`` (ending in ``/`` or empty), in key order."""
    return (name for name, _ in _children(store, prefix) if name is not None)


@dataclass
class Coverage:
    """Counts over a set of object keys."""

    items: int = 0  # distinct objects (items that ever had a version)
    current_items: int = 0  # items whose newest version is an image (the bucket's current view)
    versions: int = 0  # object versions: images and tombstones
    delete_markers: int = 0
    first_write: float | None = None
    last_write: float | None = None

    def add_item(self, versions: list[VersionEntry]) -> None:
        """One key's versions, oldest first."""
        self.items += 1
        newest = versions[-1]
        self.current_items += not newest.is_delete_marker and newest.size > 0
        for entry in versions:
            self.delete_markers += entry.is_delete_marker
            self.versions += not entry.is_delete_marker
            self._saw(entry.last_modified.timestamp())

    def _saw(self, written: float) -> None:
        self.first_write = written if self.first_write is None else min(self.first_write, written)
        self.last_write = written if self.last_write is None else max(self.last_write, written)

    def merge(self, other: Coverage) -> None:
        self.items += other.items
        self.current_items += other.current_items
        self.versions += other.versions
        self.delete_markers += other.delete_markers
        for written in (other.first_write, other.last_write):
            if written is not None:
                self._saw(written)

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "current_items": self.current_items,
            "versions": self.versions,
            "delete_markers": self.delete_markers,
            "first_write": None if self.first_write is None else epoch_to_iso(self.first_write),
            "last_write": None if self.last_write is None else epoch_to_iso(self.last_write),
        }


@dataclass
class TableSummary:
    name: str  # the table's name (the folder's segment unescaped)
    folder: str
    total: Coverage = field(default_factory=Coverage)
    tenants: dict[str, Coverage] = field(default_factory=dict)  # escaped tenant segment -> counts
    skipped: dict[str, Any] = field(default_factory=dict)  # objects that are not the table's items, by reason

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "folder": self.folder,
            **self.total.as_dict(),
            "tenants": {tenant: coverage.as_dict() for tenant, coverage in sorted(self.tenants.items())},
            "skipped": self.skipped,
        }


def backup_root(prefix: str) -> str:
    """``prefix/`` tidied as every writer tidies it (empty for no prefix)."""
    return k.table_prefix(prefix, "x")[: -len("x/")]


def table_names(store: ObjectStore, prefix: str) -> Iterator[str]:
    """Every table under the backup prefix, in order (our own folder skipped), also those only the
    original tool's leading-``/`` folder holds (``aliases.table_folders``)."""
    root = backup_root(prefix)
    names = {segment for segment in folders(store, root) if segment and segment != OWN_FOLDER}
    names |= {segment for segment in folders(store, "/" + root) if segment and segment != OWN_FOLDER}
    for segment in sorted(names, key=lambda name: name.encode("utf-8")):
        yield unquote(segment)


class _Tenants:
    """Tells where an object below a sub-folder of the table's folder belongs (see the module doc)."""

    def __init__(self, store: ObjectStore, resolver: Resolver) -> None:
        self.store, self.resolver = store, resolver
        self._folders: dict[str, bool] = {}
        self._lock = threading.Lock()

    def tenant_of(self, folder: str, versions: list[VersionEntry]) -> str | bool | None:
        """The tenant segment, None (no tenant: a name with ``/``), or False (not the table's: skipped)."""
        relative = versions[0].key[len(folder) :]
        first, _, _ = relative.partition("/")
        with self._lock:
            known = self._folders.get(folder + first)
        if known:
            return first
        found = self._read(versions)
        if known is None and found is not None:
            with self._lock:
                self._folders[folder + first] = found.where.tenant == first + "/"
        if found is None:
            return False if self._skipped(versions) else first
        return found.where.tenant[:-1] if found.where.tenant else None

    def _read(self, versions: list[VersionEntry]) -> Inspected | None:
        image = next((e for e in reversed(versions) if not e.is_delete_marker and e.size > 0), None)
        if image is None:
            return None
        found = self.resolver.inspect(image.key, self.store.get(image.key, image.version_id))
        return found if isinstance(found, Inspected) else None

    @staticmethod
    def _skipped(versions: list[VersionEntry]) -> bool:
        """An object with an image that the resolver did not place: not the table's (it counted the skip)."""
        return any(not e.is_delete_marker and e.size > 0 for e in versions)


def summarize_table(
    store: ObjectStore,
    prefix: str,
    table: str,
    *,
    workers: int = DEFAULT_LIST_WORKERS,
    tenancy: Tenancy | None = None,
) -> TableSummary:
    """One listing of the table's folders, their ranges in parallel; tenants as the module doc says.
    ``tenancy``: the table's tenant attribute as the command line gives it (``tenancy.py``), if at all."""
    folder = k.table_prefix(prefix, table)
    summary = TableSummary(table, folder)
    resolver = resolver_for(store, prefix, table, tenancy=tenancy)
    tenants = _Tenants(store, resolver)

    def work(key_range: KeyRange) -> Iterator[dict[str | None, Coverage]]:
        counts: dict[str | None, Coverage] = {}
        for versions in group_versions(key_range.list_versions(store)):
            tenant: str | bool | None = None
            if "/" in versions[0].key[len(key_range.prefix) :]:
                tenant = tenants.tenant_of(key_range.prefix, versions)
            if tenant is not False:
                counts.setdefault(tenant if isinstance(tenant, str) else None, Coverage()).add_item(versions)
        yield counts

    for _, result in map_ranges(table_ranges(store, prefix, table), work, workers):
        for tenant, coverage in (result or {}).items():
            summary.total.merge(coverage)
            if tenant is not None:
                summary.tenants.setdefault(tenant, Coverage()).merge(coverage)
    summary.skipped = resolver.skips.as_dict()
    return summary


def holds_table_item(store: ObjectStore, prefix: str, table: str, folder: str) -> bool:
    """Whether the first object with an image under ``folder`` (below the table's folder) is an item of
    ``table`` where it sits (``Resolver.inspect``; one LIST and one GET): the original tool's plain-text
    names with ``/`` in a value add folder levels to a table, which would otherwise look like a prefix."""
    entry = next((e for e in store.list_versions(folder) if not e.is_delete_marker and e.size > 0), None)
    if entry is None:
        return False
    try:
        stored = store.get(entry.key, entry.version_id)
    except NoSuchVersion:
        return False
    return isinstance(resolver_for(store, prefix, table).inspect(entry.key, stored), Inspected)


DIRECT_LOOKED_AT = 8  # objects right under a folder read at most by ``holds_items_directly``


def direct_objects(store: ObjectStore, prefix: str) -> Iterator[VersionEntry]:
    """The newest version of each object right under ``prefix`` (not in a sub-folder), in key order,
    found by seeking past each sub-folder as ``folders`` does (one listing request per step)."""
    return (entry for name, entry in _children(store, prefix) if name is None)


def holds_items_directly(store: ObjectStore, prefix: str, table: str) -> bool:
    """Whether one of the table's folders (``[P/]table/``, ``/[P/]table/``) holds, right under it, an item
    of the table where it sits: the first objects there with an image (``DIRECT_LOOKED_AT`` at most, one
    GET each; a stray one is passed over) are read with ``Resolver.inspect``. A folder may be both a
    table (the original tool's without a prefix: ``/orders/<md5>``) and another stack's prefix
    (``orders/customers/<md5>``): ``tables`` lists it as a table when this holds."""
    resolver = resolver_for(store, prefix, table)
    for folder in resolver.folders:
        for entry in itertools.islice(direct_objects(store, folder), DIRECT_LOOKED_AT):
            if entry.is_delete_marker or entry.size == 0:
                continue
            try:
                stored = store.get(entry.key, entry.version_id)
            except NoSuchVersion:
                continue
            if isinstance(resolver.inspect(entry.key, stored), Inspected):
                return True
    return False


def summarize_bucket(
    store: ObjectStore, prefix: str, *, workers: int = DEFAULT_LIST_WORKERS, tenancy: Tenancy | None = None
) -> list[TableSummary]:
    return [
        summarize_table(store, prefix, table, workers=workers, tenancy=tenancy) for table in table_names(store, prefix)
    ]
