"""The restore planner: stream a table's version listing and decide each item's state at T.

Memory stays bounded: S3 lists one key's versions together, so only the current key's versions
are held, and each decision is yielded as soon as its key's versions have gone by.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from ddb_backup.format import aliases as al
from ddb_backup.format.version_meta import VersionMeta
from ddb_backup.restore.ranges import KeyRange, key_ranges
from ddb_backup.restore.timeline import DEFAULT_MAX_LAG, ItemState, state_at
from ddb_backup.store import NoSuchVersion, ObjectStore, VersionEntry

_MD5_NAME = re.compile(r"[0-9a-f]{32}")
PROBE_KEYS = 50


@dataclass(frozen=True)
class PointInTime:
    """Which state to compute: the table's objects under ``prefix`` at ``at`` (epoch seconds)."""

    at: float
    max_lag: float = DEFAULT_MAX_LAG


def group_versions(entries: Iterable[VersionEntry]) -> Iterator[list[VersionEntry]]:
    """Consecutive entries of one key, turned oldest first."""
    for _, versions in itertools.groupby(entries, key=lambda entry: entry.key):
        yield list(versions)[::-1]


def metadata_reader(store: ObjectStore) -> Callable[[VersionEntry], VersionMeta | None]:
    def read(entry: VersionEntry) -> VersionMeta | None:
        try:
            return VersionMeta.from_s3(store.head(entry.key, entry.version_id).metadata)
        except NoSuchVersion:
            return None  # gone since listing (lifecycle expiry): decided by its write time

    return read


def plan_range(
    store: ObjectStore,
    key_range: KeyRange,
    when: PointInTime,
    *,
    after: str | None = None,
    wanted: Callable[[str], bool] | None = None,
) -> Iterator[ItemState]:
    """Every item of one key range (optionally only ``wanted`` object keys), in key order."""
    read = metadata_reader(store)
    for versions in group_versions(key_range.list_versions(store, after=after)):
        if wanted is None or wanted(versions[0].key):
            yield state_at(versions, when.at, read, max_lag=when.max_lag)


def uses_md5_names(store: ObjectStore, prefix: str) -> bool:
    """Whether the objects right under ``prefix`` look like MD5 names (a probe of the first keys)."""
    names = [entry.key[len(prefix) :] for entry in itertools.islice(store.list_versions(prefix), PROBE_KEYS)]
    return bool(names) and all(_MD5_NAME.fullmatch(name) for name in names)


WHOLE, MD5, TEXT = "whole", "md5", "text"
SMALL_LISTING = 1000  # versions: one listing page


def range_scheme(store: ObjectStore, folder: str, *, allow_whole: bool = True) -> str:
    """How to cut ``folder`` into key ranges: not at all when its whole listing fits one page
    (``allow_whole``; never for ``--segment``, whose machines must all cut alike as the bucket grows),
    else by the shape of its names."""
    if allow_whole and sum(1 for _ in itertools.islice(store.list_versions(folder), SMALL_LISTING)) < SMALL_LISTING:
        return WHOLE
    return MD5 if uses_md5_names(store, folder) else TEXT


def scheme_ranges(folder: str, scheme: str) -> list[KeyRange]:
    if scheme == WHOLE:
        return [KeyRange(0, folder, None, None)]
    return key_ranges(folder, md5_names=scheme == MD5)


def table_folders(store: ObjectStore, prefix: str, table: str, tenant: str | None = None) -> list[str]:
    """The folders holding a table's objects (or one tenant's, ``tenant`` being its escaped segment): ours,
    always, then those of the original tool that hold anything (``aliases.table_folders``: a leading
    ``/``; tenants unescaped). A folder inside another one listed is left out (listed once)."""
    folders = []
    for folder in al.table_folders(prefix, table):
        if tenant is None:
            folders.append(folder)
        else:
            folders += [folder + tenant + "/", folder + unquote(tenant) + "/"]
    kept = [folders[0]] + [f for f in dict.fromkeys(folders[1:]) if f != folders[0] and _holds(store, f)]
    return [f for f in kept if not any(f != other and f.startswith(other) for other in kept)]


def _holds(store: ObjectStore, folder: str) -> bool:
    return next(iter(store.list_versions(folder)), None) is not None


def folder_ranges(
    store: ObjectStore, folders: list[str], scheme: str | None = None, *, allow_whole: bool = True
) -> tuple[list[KeyRange], str]:
    """Key ranges over several folders, numbered in order; one cutting ``scheme`` for all (chosen from
    the first folder that needs cutting when not given)."""
    if scheme is None:
        schemes = [range_scheme(store, folder, allow_whole=allow_whole) for folder in folders]
        scheme = next((s for s in schemes if s != WHOLE), WHOLE)
    ranges: list[KeyRange] = []
    for folder in folders:
        for key_range in scheme_ranges(folder, scheme):
            ranges.append(KeyRange(len(ranges), key_range.prefix, key_range.start, key_range.end))
    return ranges, scheme


def table_ranges(store: ObjectStore, prefix: str, table: str, tenant: str | None = None) -> list[KeyRange]:
    """The key ranges of a table (or of one tenant's folder, ``tenant`` being its escaped segment), over
    every folder that holds its objects (``table_folders``), cut as restore cuts them (``folder_ranges``:
    folders whose listing fits one page are read whole, one LIST each, with no KeyMarker)."""
    return folder_ranges(store, table_folders(store, prefix, table, tenant))[0]
