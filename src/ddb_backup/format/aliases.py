"""Every name a writer of a table gives an item: ours, ours of format 1, and the original Node.js tool's.

An item is one history whatever object names hold it (docs/format.md, "Buckets written by the original
tool"). Readers use this module to answer two questions about an object under a table's folder:

- does it **belong** to the table: is its name one that some writer of this table gives the item that
  its own body (or metadata) describes? A stray object, or another stack's object that happens to sit
  under the folder, does not;
- which **other names** may hold versions of the same item (its aliases), to merge them into one history.

The original tool names an object ``[BackupPrefix, table, tenant?, name].join('/')``: a leading ``/``
when the prefix is unset, the tenant unescaped, and ``name`` either ``md5(JSON.stringify(Keys))`` in
the order the stream (or its backfill: key-schema order) gives the key map, or the key's values ordered
by attribute name joined with `` | ``, unescaped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ddb_backup.format import keys as k
from ddb_backup.format.version_meta import Tenancy

ORIGINAL_SEPARATOR = " | "


def table_folders(prefix: str, table: str) -> list[str]:
    """Where a table's objects live: ``[prefix/]table/`` (ours; the original tool's when it had a prefix)
    and the same with a leading ``/`` (the original tool with no ``BackupPrefix``, or one starting with
    ``/``: it joined the segments with ``/`` without tidying them). ``--prefix ""`` and ``--prefix /``
    name both ``table/`` and ``/table/``."""
    ours = k.table_prefix(prefix, table)
    return [ours, "/" + ours]


def _scalar_text(typed: Mapping[str, Any]) -> str:
    return k.canonical_scalar(typed)[1]


def js_stringify(key: Mapping[str, Any], order: Iterable[str]) -> str:
    """``JSON.stringify`` of the key map with its attributes in ``order`` (compact; non-ASCII kept, as
    JavaScript writes it)."""
    ordered = {name: dict([k.canonical_scalar(key[name])]) for name in order}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


def original_md5_names(key: Mapping[str, Any]) -> list[str]:
    """The original tool's MD5 names of a key: one per attribute order (the stream's order is not known
    to a reader, and its backfill hashed in key-schema order), so at most two."""
    names = []
    for order in itertools.permutations(sorted(key)):
        name = hashlib.md5(js_stringify(key, order).encode("utf-8"), usedforsecurity=False).hexdigest()
        if name not in names:
            names.append(name)
    return names


def original_plain_text_name(key: Mapping[str, Any]) -> str:
    """The original tool's plain-text name: the values ordered by attribute NAME, joined with `` | ``,
    nothing escaped (a ``/`` in a value adds a folder level)."""
    return ORIGINAL_SEPARATOR.join(_scalar_text(key[name]) for name in sorted(key))


def our_plain_text_names(key: Mapping[str, Any], schema: k.KeySchema | None) -> list[str]:
    """Our plain-text names of a key (``keys.object_names_of``: today's, its hashed fallback, format 1's),
    in key-schema order (both orders when the schema is not known)."""
    orders = [schema.attribute_names] if schema is not None else list(itertools.permutations(sorted(key)))
    names: list[str] = []
    for order in orders:
        if set(order) != set(key):
            continue
        for name in k.object_names_of(key, k.KeySchema(*order))[1:]:
            if name not in names:
                names.append(name)
    return names


def item_names(key: Mapping[str, Any], schema: k.KeySchema | None = None) -> list[str]:
    """Every object name a writer gives the item: ours (MD5 first: the usual one), ours in plain text,
    the original tool's MD5 in either key order and its plain text. Duplicates removed, order fixed."""
    canonical = k.canonical_key(key)
    names = [k.md5_object_name(canonical)]
    for name in [*original_md5_names(canonical), *our_plain_text_names(canonical, schema)]:
        if name not in names:
            names.append(name)
    original_text = original_plain_text_name(canonical)
    if original_text not in names:
        names.append(original_text)
    return names


def attribute_texts(image: Mapping[str, Any]) -> set[str]:
    """The texts a tenant segment can be made of: each scalar attribute's value, raw and escaped."""
    texts: set[str] = set()
    for value in image.values():
        if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in k.KEY_TYPES:
            try:
                text = _scalar_text(value)
            except k.InvalidKeyError:
                continue
            texts.update((text, k.escape_segment(text), k.tenant_segment_for_text(text)))
    return texts


def tenant_segments(
    image: Mapping[str, Any] | None, tenancy: Tenancy | None, table: Tenancy | None = None
) -> set[str] | None:
    """The tenant segments a version may sit under (``None``: any), by what its writer recorded
    (``tenancy``), else by the table's tenant attribute (``table``: ``tenancy.learn_table_tenancy``), else
    any attribute's value."""
    if tenancy is None and table is not None:
        if table.attribute is None:
            return set()
        if image is None:
            return None
        value = image.get(table.attribute)
        return {k.tenant_segment(value)} | (set() if value is None else attribute_texts({table.attribute: value}))
    if tenancy is None:
        return None if image is None else attribute_texts(image) | {k.MISSING_TENANT_SEGMENT}
    if tenancy.attribute is None:
        return set()
    return None if image is None else {k.tenant_segment(image.get(tenancy.attribute))}


@dataclass(frozen=True)
class Placement:
    """Where an object sits: its table folder, its tenant part (``""`` or ``"tenant/"``) and its name."""

    folder: str
    tenant: str
    name: str


def placement(
    object_key: str,
    folders: Iterable[str],
    key: Mapping[str, Any],
    image: Mapping[str, Any] | None,
    schema: k.KeySchema | None = None,
    tenancy: Tenancy | None = None,
    table: Tenancy | None = None,
) -> Placement | None:
    """How the object's key is one a writer of this table gives the item, or None: it does not belong.

    ``key`` is the item's key (from its body or metadata); ``image`` its body when it has one.
    ``tenancy`` is what our writer recorded (``tenant-attribute`` metadata): with it, a version has a
    tenant segment exactly when its writer had a tenant attribute, and that segment is the one the writer
    computes from that attribute of the image (any segment for a removal, which has no image). Without it
    (the original tool, or our versions written before writers recorded it) the table's tenant attribute
    (``table``, when a reader knows it: ``tenancy.learn_table_tenancy``) is held to the same way, the
    segment raw or escaped; when nobody knows it, a tenant segment must be ``%none`` or the value, raw or
    escaped, of one of the image's attributes (any segment without an image). Our writers escape the
    segment: under a recorded tenant attribute it never holds ``/``. docs/format.md, "Which objects a
    reader takes as a table's".
    """
    texts = tenant_segments(image, tenancy, table)
    writer = tenancy if tenancy is not None else table
    untenanted = writer is None or writer.attribute is None
    ours = k.md5_object_name(key)
    for folder in folders:
        if not object_key.startswith(folder):
            continue
        relative = object_key[len(folder) :]
        # Our MD5 name first (the common case), before computing every other writer's names.
        # (``%md5-<md5>``, the plain-text fallback, also ends with the MD5 name: only a whole segment counts)
        is_ours = relative == ours or relative.endswith("/" + ours)
        for name in [ours] if is_ours else item_names(key, schema):
            if relative == name:
                if untenanted:
                    return Placement(folder, "", name)
                continue
            if relative.endswith("/" + name):
                tenant = relative[: -len(name) - 1]
                if tenancy is not None and "/" in tenant:
                    continue  # our writers escape the segment
                if texts is None or tenant in texts:
                    return Placement(folder, tenant + "/", name)
    return None


def alias_object_keys(
    where: Placement,
    folders: Iterable[str],
    key: Mapping[str, Any],
    schema: k.KeySchema | None = None,
    *,
    other_tenants: Iterable[str] = (),
) -> list[str]:
    """The other object keys that may hold versions of the item placed at ``where``: every writer's name
    of the key, in every folder of the table, under the same tenant (raw and escaped) and under
    ``other_tenants`` (``"tenant/"`` parts: an original tool's item whose tenant changed)."""
    own = where.folder + where.tenant + where.name
    tenants = [where.tenant]
    if where.tenant:
        raw = where.tenant[:-1]
        tenants.append(k.tenant_segment_for_text(raw) + "/")
        tenants.append(unquote(raw) + "/")  # ours is the escaped segment: the original tool's is the raw value
    tenants += list(other_tenants)
    candidates: list[str] = []
    for folder, tenant, name in itertools.product(folders, tenants, item_names(key, schema)):
        candidate = folder + tenant + name
        if candidate != own and candidate not in candidates:
            candidates.append(candidate)
    return candidates
