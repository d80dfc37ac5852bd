"""The restore's target table: found or created, and checked before anything is written.

A missing target is created like the source: from the schema saved with the backup
(docs/format.md, "Saved table schemas") or from the live source table's DescribeTable. Both have the
same shape, so one function turns either into CreateTable arguments. TTL is never switched on for a
restored table: it would start deleting restored items whose expiry time has passed.

An existing target must have the backup's key: the same attribute names in the same roles with the
same types (AttributeDefinitions). When neither a saved schema nor the source table is there, the
backup's own items say what its key is (``check_items_fit``): the typed key in a version's metadata,
or, for the original tool's versions, an image whose key under the target's schema names its object.
A target keyed otherwise would merge items (fewer key attributes) or refuse every write. Key roles are
checked against a schema, or against our plain-text names (hash value first); an MD5 name says nothing
of roles, so without a schema a target with the roles swapped is accepted (README, "Key check").
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ddb_backup.errors import BackupError, UserError
from ddb_backup.format import aliases
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import create_table_args, describe_table, load_schema
from ddb_backup.format.version_meta import MetadataError, VersionMeta
from ddb_backup.restore.resolve import json_kind
from ddb_backup.store import ObjectStore, StoreError

ON_DEMAND = "PAY_PER_REQUEST"
PROVISIONED = "PROVISIONED"
ACTIVE_TIMEOUT_SECONDS = 600.0
SAMPLE_OBJECTS = 20  # objects looked at to learn the backup's key when no schema is known
NEW_TABLE_HINT = "restore into a new table (--to-table NEW_NAME); it is created with the backup's key"


@dataclass(frozen=True)
class Target:
    """The table a restore writes to."""

    name: str
    key_schema: k.KeySchema
    created: bool  # by this restore (so it was empty)
    exists: bool = True  # False only in a dry run that would create it
    key_types: Mapping[str, str] = field(default_factory=dict)  # key attribute -> S, N or B (when known)


def key_types(table: Mapping[str, Any]) -> dict[str, str]:
    """The types of a DescribeTable-shaped table's key attributes, from its AttributeDefinitions."""
    names = {element["AttributeName"] for element in table["KeySchema"]}
    definitions = table.get("AttributeDefinitions") or []
    return {d["AttributeName"]: d["AttributeType"] for d in definitions if d["AttributeName"] in names}


def describe_key(schema: k.KeySchema, types: Mapping[str, str]) -> str:
    """``pk (S, hash) + sk (N, range)``: a key as the user reads it in a message."""
    parts = [f"{schema.hash_key} ({types.get(schema.hash_key, '?')}, hash)"]
    if schema.range_key is not None:
        parts.append(f"{schema.range_key} ({types.get(schema.range_key, '?')}, range)")
    return " + ".join(parts)


def source_schema(store: ObjectStore, client: Any, prefix: str, source: str) -> dict[str, Any] | None:
    """The source table's schema: the one saved with the backup, else the live table's."""
    return load_schema(store, prefix, source) or describe_table(client, source)


def is_empty(client: Any, table: str) -> bool:
    answer = client.scan(TableName=table, Limit=1, Select="COUNT")
    return not answer.get("Count") and not answer.get("LastEvaluatedKey")


def prepare_target(
    client: Any,
    target: str,
    schema: Mapping[str, Any] | None,
    *,
    overwrite: bool,
    resuming: bool,
    dry_run: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> Target:
    """Find or create the target; refuse a non-empty one unless told to overwrite (or resuming)."""
    existing = describe_table(client, target)
    if existing is not None:
        key_schema, types = k.KeySchema.from_describe_table(existing), key_types(existing)
        if schema is not None:
            wanted, wanted_types = k.KeySchema.from_describe_table(schema), key_types(schema)
            if wanted != key_schema or any(types.get(name) != kind for name, kind in wanted_types.items()):
                raise UserError(
                    f"table {target!r} is keyed {describe_key(key_schema, types)}, the backup's table "
                    f"{describe_key(wanted, wanted_types)}",
                    NEW_TABLE_HINT,
                )
        if not (overwrite or resuming) and not is_empty(client, target):
            raise UserError(
                f"table {target!r} is not empty",
                "add --overwrite to write into it (and --sync to also delete items absent at TIME), "
                "or choose a new --to-table",
            )
        return Target(target, key_schema, created=False, key_types=types)
    if schema is None:
        raise UserError(
            f"table {target!r} does not exist and no schema of the source table was found "
            "(none saved with the backup, and the source table is gone)",
            "create the target table yourself with the source's key, then run again",
        )
    new_key, new_types = k.KeySchema.from_describe_table(schema), key_types(schema)
    if dry_run:
        return Target(target, new_key, created=True, exists=False, key_types=new_types)
    client.create_table(**create_table_args(schema, target))
    wait_active(client, target, sleep=sleep)
    return Target(target, new_key, created=True, key_types=new_types)


def image_key_problem(image: Any, schema: k.KeySchema, types: Mapping[str, str]) -> str | None:
    """Why ``image`` cannot be written under the key ``schema`` (a key attribute absent, of another
    type, or empty), or None when it can."""
    if not isinstance(image, Mapping):
        return f"not an item image ({json_kind(image)})"
    for name in schema.attribute_names:
        value = image.get(name)
        if not isinstance(value, Mapping) or len(value) != 1:
            return f"has no key attribute {name!r} of the target's key {describe_key(schema, types)}"
        kind = next(iter(value))
        if name in types and kind != types[name]:
            return f"key attribute {name!r} is of type {kind}, the target's is {types[name]}"
        try:
            k.canonical_key({name: value})
        except k.InvalidKeyError as err:
            return str(err)
    return None


def check_items_fit(store: ObjectStore, folder: str, target: Target) -> None:
    """Refuse a target whose key does not fit the backup's items (no schema of the source is known).

    Looks at up to ``SAMPLE_OBJECTS`` objects under ``folder``: a version's metadata key fits when
    it has exactly the target's key attributes with its types; an image without our metadata (the
    original tool) fits when it holds the target's key attributes and its key under the target's
    schema names its object. One item that fits is enough (a table's items share one key; objects of
    another table sharing the folder must not refuse it); when none fits and some do not, raises
    ``UserError`` (exit 2) before anything is written. Unreadable objects are passed over."""
    first_misfit: str | None = None
    for object_key, version_id in _sample_versions(store, folder):
        try:
            stored = store.head(object_key, version_id)
            meta = VersionMeta.from_s3(stored.metadata)
        except (StoreError, MetadataError):
            continue
        if meta is not None and meta.key is not None:
            misfit = _metadata_misfit(target, meta.key, object_key)
        elif meta is None and stored.size:
            misfit = _image_misfit(store, object_key, version_id, target)
        else:
            continue
        if misfit is None:
            return
        if misfit != _UNREADABLE:
            first_misfit = first_misfit or misfit
    if first_misfit is not None:
        raise UserError(first_misfit, NEW_TABLE_HINT + ", or create it with the backup's key yourself")


_UNREADABLE = "unreadable"
_MD5_NAME = re.compile(r"[0-9a-f]{32}")


def _sample_versions(store: ObjectStore, folder: str) -> list[tuple[str, str]]:
    entries = itertools.islice(store.list_versions(folder), SAMPLE_OBJECTS * 4)
    return [(e.key, e.version_id) for e in entries if not e.is_delete_marker and not e.key.endswith("/")][
        :SAMPLE_OBJECTS
    ]


def _metadata_misfit(target: Target, key: Mapping[str, Any], object_key: str) -> str | None:
    try:
        backup_types = {name: next(iter(value)) for name, value in key.items()}
    except (AttributeError, TypeError, StopIteration):
        return _UNREADABLE
    names = set(target.key_schema.attribute_names)
    if set(backup_types) == names and all(target.key_types.get(n, t) == t for n, t in backup_types.items()):
        return _roles_misfit(target, key, object_key)
    backup = " + ".join(f"{name} ({kind})" for name, kind in sorted(backup_types.items()))
    return (
        f"table {target.name!r} is keyed {describe_key(target.key_schema, target.key_types)}, the backup's "
        f"items are keyed {backup} (e.g. {object_key})"
    )


def _roles_misfit(target: Target, key: Mapping[str, Any], object_key: str) -> str | None:
    """Our plain-text names put the hash key's value first: one that is not a name of ``key`` under the
    target's schema (while the names and types match) has the roles the other way round. An MD5 name
    says nothing of roles (README, "Key check")."""
    name = object_key.rsplit("/", 1)[-1]
    if _MD5_NAME.fullmatch(name) or target.key_schema.range_key is None:
        return None
    try:
        if name in k.object_names_of(key, target.key_schema):
            return None
    except k.InvalidKeyError:
        return _UNREADABLE
    return (
        f"table {target.name!r} is keyed {describe_key(target.key_schema, target.key_types)}, but the backup's "
        f"item {object_key} is named with the other key attribute as its hash key (the same names, other roles)"
    )


def _image_misfit(store: ObjectStore, object_key: str, version_id: str, target: Target) -> str | None:
    try:
        image = json.loads(store.get(object_key, version_id).body)
    except (StoreError, ValueError):
        return _UNREADABLE
    if not isinstance(image, dict):
        return _UNREADABLE
    problem = image_key_problem(image, target.key_schema, target.key_types)
    key = {name: image[name] for name in target.key_schema.attribute_names if name in image}
    if problem is None and _named_by(object_key, key, target.key_schema):
        return None
    types = {name: next(iter(value)) for name, value in key.items() if isinstance(value, Mapping) and value}
    return (
        f"table {target.name!r} is keyed {describe_key(target.key_schema, target.key_types)}, but the backup's "
        f"item {object_key} is not named by that key ({problem or 'its name comes from other attributes'}; "
        f"it has {', '.join(f'{n} ({t})' for n, t in types.items()) or 'none of them'})"
    )


def _named_by(object_key: str, key: Mapping[str, Any], schema: k.KeySchema) -> bool:
    """The object's name is one a writer gives ``key``; the original tool's plain text may hold ``/``."""
    try:
        names = _names_of(key, schema) | set(aliases.item_names(key, schema))
    except k.InvalidKeyError:
        return False
    return any(object_key.endswith("/" + name) for name in names)


def _names_of(key: Mapping[str, Any], schema: k.KeySchema) -> set[str]:
    """Every object name a writer gives this key: ours (``keys.object_names_of``) and the original
    tool's MD5 of ``JSON.stringify(Keys)`` in any attribute order (docs/format.md)."""
    names = set(k.object_names_of(key, schema))
    for order in itertools.permutations(key):
        text = json.dumps({name: key[name] for name in order}, separators=(",", ":"), ensure_ascii=False)
        names.add(hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest())
    return names


def wait_active(client: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
    deadline = time.monotonic() + ACTIVE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        table_description = describe_table(client, table)
        if table_description is not None and table_description.get("TableStatus", "ACTIVE") == "ACTIVE":
            return
        sleep(1.0)
    raise BackupError(f"table {table!r} did not become ACTIVE within {ACTIVE_TIMEOUT_SECONDS:.0f} s")
