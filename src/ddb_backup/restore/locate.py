"""Finding one item's objects in a bucket, whatever names its writers gave it (``aliases``)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from ddb_backup.format import aliases as al
from ddb_backup.format import keys as k
from ddb_backup.store import ObjectStore


def candidate_object_keys(
    prefix: str, table: str, key: Mapping[str, Any], *, tenant: str | None = None, schema: k.KeySchema | None = None
) -> list[str]:
    """Where the item can be, ours first: its MD5 name, its plain-text name when the key schema is known
    (without a schema, a key of one attribute is its own schema), then every other name a writer gives
    it (format 1's plain text, the original tool's MD5 in either key order and its plain text) in every
    folder of the table (``aliases.table_folders``). ``tenant`` is the escaped tenant segment
    (``keys.tenant_segment``); the original tool's unescaped form is tried too."""
    canonical = k.canonical_key(key)
    if schema is None and len(canonical) == 1:
        schema = k.KeySchema(next(iter(canonical)))
    candidates = [k.ItemNamer(prefix, table, plain_text=False).object_key(canonical, tenant)]
    if schema is not None:
        candidates.append(k.ItemNamer(prefix, table, plain_text=True, schema=schema).object_key(canonical, tenant))
    tenants = [""] if tenant is None else list(dict.fromkeys([tenant + "/", unquote(tenant) + "/"]))
    for folder, tenant_part, name in itertools.product(
        al.table_folders(prefix, table), tenants, al.item_names(canonical, schema)
    ):
        candidate = folder + tenant_part + name
        if candidate not in candidates:
            candidates.append(candidate)
    return candidates


def find_object_keys(store: ObjectStore, candidates: list[str]) -> list[str]:
    """The candidates that have any version in the store (one LIST each), in the candidates' order."""
    found = []
    for candidate in candidates:
        first = next(itertools.islice(store.list_versions(candidate), 1), None)
        if first is not None and first.key == candidate:
            found.append(candidate)
    return found


def find_object_key(store: ObjectStore, candidates: list[str]) -> str | None:
    """The first candidate that has any version in the store."""
    return next(iter(find_object_keys(store, candidates)), None)
