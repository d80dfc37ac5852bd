"""Finding one item's object in a bucket when the naming (MD5 or plain text) is not known."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from ddb_backup import keys as k
from ddb_backup.store import ObjectStore


def candidate_object_keys(
    prefix: str, table: str, key: Mapping[str, Any], *, tenant: str | None = None, schema: k.KeySchema | None = None
) -> list[str]:
    """Where the item can be: its MD5 name, and its plain-text name when the key schema is known.

    ``tenant`` is the escaped tenant segment (``keys.tenant_segment``). Without a schema, a key of one
    attribute is its own schema (the hash key).
    """
    canonical = k.canonical_key(key)
    if schema is None and len(canonical) == 1:
        schema = k.KeySchema(next(iter(canonical)))
    candidates = [k.ItemNamer(prefix, table, plain_text=False).object_key(canonical, tenant)]
    if schema is not None:
        candidates.append(k.ItemNamer(prefix, table, plain_text=True, schema=schema).object_key(canonical, tenant))
        format1 = k.object_key_for(prefix, table, k.format1_plain_text_object_name(canonical, schema), tenant)
        if format1 not in candidates and len(format1.encode("utf-8")) <= k.MAX_OBJECT_KEY_BYTES:
            candidates.append(format1)  # format 1 kept "|" unescaped in plain-text names
    return candidates


def find_object_key(store: ObjectStore, candidates: list[str]) -> str | None:
    """The first candidate that has any version in the store."""
    for candidate in candidates:
        first = next(itertools.islice(store.list_versions(candidate), 1), None)
        if first is not None and first.key == candidate:
            return candidate
    return None
