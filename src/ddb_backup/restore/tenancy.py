"""Which tenant attribute a table's writers used: the rule readers apply to versions that do not record it.

Our versions record their writer's ``MultiTenancyColumn`` (``tenant-attribute`` metadata) and are held
to it exactly. The original tool's versions (and ours written before the record) say nothing, so a
reader learns the **table's** tenant attribute once, from the first of these sources that knows it
(docs/format.md, "Which objects a reader takes as a table's"):

1. the command line: ``--tenant-column NAME`` or ``--no-tenants`` (``explicit``);
2. the saved table schema (``~ddb-backup/tables/T/schema.json``, ``tenant_attribute``: written by
   ``full-backup``) — one GET, once;
3. our own versions in the table's folder: the first of the folder's first ``PROBE_VERSIONS`` listed
   versions (key order, newest first) that records ``tenant-attribute`` and sits where that record puts
   it — at most ``PROBE_READS`` reads (GET of an image, HEAD of a tombstone) and one LIST, once per
   command, never per item.

None of them: unknown (``None``), and readers fall back to "a tenant folder may be any attribute's
value". Deterministic: the same bucket gives the same answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ddb_backup.format import aliases as al
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import TENANT_ATTRIBUTE as SCHEMA_FIELD
from ddb_backup.format.version_meta import MetadataError, Tenancy, VersionMeta
from ddb_backup.store import NoSuchVersion, ObjectStore, VersionEntry

PROBE_VERSIONS = 50  # listed versions looked at, at most
PROBE_READS = 8  # of which read (GET or HEAD), at most

OPTION, SAVED_SCHEMA, OUR_VERSIONS = "--tenant-column/--no-tenants", "the saved table schema", "our versions"


@dataclass(frozen=True)
class TableTenancy:
    """The table's tenant attribute (``tenancy``; ``None``: unknown) and where it was learnt."""

    tenancy: Tenancy | None
    source: str = ""


UNKNOWN = TableTenancy(None)


def from_option(tenant_column: str | None, no_tenants: bool) -> Tenancy | None:
    """``--tenant-column NAME`` / ``--no-tenants`` as a ``Tenancy`` (``None``: neither given). The caller
    refuses both together (``errors.UserError``)."""
    if no_tenants:
        return Tenancy(None)
    return None if tenant_column is None else Tenancy(tenant_column)


def from_saved_schema(saved: Mapping[str, Any] | None) -> Tenancy | None:
    """The tenant attribute a saved schema records (``None``: a schema saved before it was recorded)."""
    if not isinstance(saved, Mapping) or SCHEMA_FIELD not in saved:
        return None
    attribute = saved[SCHEMA_FIELD]
    if attribute is not None and (not isinstance(attribute, str) or not attribute):
        return None  # not one we wrote: ignore it
    return Tenancy(attribute)


def learn_table_tenancy(
    store: ObjectStore,
    folders: list[str],
    key_schema: k.KeySchema | None,
    *,
    explicit: Tenancy | None = None,
    saved: Mapping[str, Any] | None = None,
) -> TableTenancy:
    """The table's tenant attribute from the sources in the module doc, in that order."""
    if explicit is not None:
        return TableTenancy(explicit, OPTION)
    recorded = from_saved_schema(saved)
    if recorded is not None:
        return TableTenancy(recorded, SAVED_SCHEMA)
    found = probe_our_versions(store, folders, key_schema)
    return UNKNOWN if found is None else TableTenancy(found, OUR_VERSIONS)


def probe_our_versions(store: ObjectStore, folders: list[str], key_schema: k.KeySchema | None) -> Tenancy | None:
    """The tenant attribute recorded by the first of our versions in ``folders[0]`` (our folder) that
    belongs there by its own record (``aliases.placement``), or None (see the module doc for the cost)."""
    reads = 0
    for entry in itertools.islice(store.list_versions(folders[0]), PROBE_VERSIONS):
        if entry.is_delete_marker:
            continue
        if reads == PROBE_READS:
            break
        reads += 1
        found = _recorded_here(store, entry, folders, key_schema)
        if found is not None:
            return found
    return None


def _recorded_here(
    store: ObjectStore, entry: VersionEntry, folders: list[str], key_schema: k.KeySchema | None
) -> Tenancy | None:
    from ddb_backup.restore.resolve import parse_image  # resolve uses this module: import when probing

    try:
        stored = store.get(entry.key, entry.version_id) if entry.size else store.head(entry.key, entry.version_id)
        meta = VersionMeta.from_s3(stored.metadata)
    except (NoSuchVersion, MetadataError):
        return None
    if meta is None or meta.tenancy is None:
        return None
    image = parse_image(stored.body)[0] if entry.size else None
    try:
        if meta.key:
            item_key = k.canonical_key(meta.key)
        elif image is not None and key_schema is not None:
            item_key = k.canonical_key({name: image[name] for name in key_schema.attribute_names})
        else:
            return None
    except (k.InvalidKeyError, KeyError):
        return None
    if al.placement(entry.key, folders, item_key, image, key_schema, meta.tenancy) is None:
        return None  # another stack's object under our folder: it says nothing about this table
    return meta.tenancy
