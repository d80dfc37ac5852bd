"""``--sync``'s arithmetic: the digests that stand for items present at T, and the target's keys."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ddb_backup.format import keys as k
from ddb_backup.restore.options import RestoreSummary
from ddb_backup.restore.target import Target
from ddb_backup.restore.writer import BatchWriter


def name_digest(object_key: str) -> bytes:
    """16 bytes standing for an item's object name (the last path segment: tenants do not matter)."""
    return hashlib.md5(object_key.rsplit("/", 1)[-1].encode("utf-8"), usedforsecurity=False).digest()


def key_name_digests(key: dict[str, Any], schema: k.KeySchema) -> list[bytes]:
    """The digests an item present at T would have, under any naming (dry runs: no image read)."""
    names = k.object_names_of(key, schema)  # every naming, fallbacks and format 1's included
    return [hashlib.md5(name.encode("utf-8"), usedforsecurity=False).digest() for name in names]


def key_digest(key: Mapping[str, Any]) -> bytes:
    """16 bytes standing for an item's key (its canonical ``key_json``), whatever named its object."""
    return hashlib.md5(k.key_json(key).encode("utf-8"), usedforsecurity=False).digest()


def scan_keys(client: Any, table: str, schema: k.KeySchema) -> Iterable[dict[str, Any]]:
    """Every item's key in ``table`` (a Scan projecting the key attributes)."""
    names = {f"#k{index}": name for index, name in enumerate(schema.attribute_names)}
    args: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    while True:
        page = client.scan(**args)
        for item in page.get("Items", []):
            yield {name: item[name] for name in schema.attribute_names}
        if not page.get("LastEvaluatedKey"):
            return
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def delete_absent(
    keys: tuple[str, ...],
    dynamodb: Any,
    target: Target,
    writer: BatchWriter | None,
    present: set[bytes],
    stop: threading.Event,
    show: Callable[[], None],
    summary: RestoreSummary,
) -> None:
    """Delete the target's items whose key is not in ``present`` (only the ``keys`` given, when any);
    a dry run (``writer`` None) only counts them in ``summary.deletes``, by ``name_digest``."""
    if keys:
        wanted: Iterable[dict[str, Any]] = (json.loads(text) for text in keys)
    else:
        wanted = scan_keys(dynamodb, target.name, target.key_schema)
    for key in wanted:
        if stop.is_set():
            return
        if writer is None:
            if any(digest in present for digest in key_name_digests(key, target.key_schema)):
                continue
            summary.deletes += 1
        elif key_digest(key) not in present:
            writer.delete(key)
        show()
