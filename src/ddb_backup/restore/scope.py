"""Which key ranges a restore covers: the table's (or a tenant's) folders cut into ranges, this
segment's share of them, or one range per object that holds a ``--key``."""

from __future__ import annotations

import json

from ddb_backup.format import keys as k
from ddb_backup.restore.locate import candidate_object_keys, find_object_keys
from ddb_backup.restore.options import RestoreOptions
from ddb_backup.restore.plan import folder_ranges, table_folders
from ddb_backup.restore.ranges import KeyRange, segment_ranges
from ddb_backup.store import ObjectStore


def restore_ranges(
    store: ObjectStore, options: RestoreOptions, schema: k.KeySchema, scheme: str | None
) -> tuple[list[KeyRange], str | None]:
    """The ranges and the cutting scheme (``scheme`` when given: a resume cuts as its checkpoint did)."""
    if options.keys:
        return key_ranges_of(store, options, schema), None
    folders = table_folders(store, options.prefix, options.source, options.tenant_segment)
    all_ranges, scheme = folder_ranges(store, folders, scheme, allow_whole=options.total_segments == 1)
    ranges = segment_ranges(all_ranges, options.segment, options.total_segments)
    return ranges, scheme


def key_ranges_of(store: ObjectStore, options: RestoreOptions, schema: k.KeySchema) -> list[KeyRange]:
    """One range per object holding a ``--key`` (every name any writer gives it: ``aliases``)."""
    ranges: list[KeyRange] = []
    for key_text in options.keys:
        key = json.loads(key_text)
        candidates = candidate_object_keys(
            options.prefix, options.source, key, tenant=options.tenant_segment, schema=schema
        )
        for object_key in find_object_keys(store, candidates) or candidates[:1]:
            ranges.append(KeyRange(len(ranges), object_key, None, object_key))
    return ranges
