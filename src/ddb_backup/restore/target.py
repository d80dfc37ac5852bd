"""The restore's target table: found or created, and checked before anything is written.

A missing target is created like the source: from the schema saved with the backup
(docs/format.md, "Saved table schemas") or from the live source table's DescribeTable. Both have the
same shape, so one function turns either into CreateTable arguments. TTL is never switched on for a
restored table: it would start deleting restored items whose expiry time has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ddb_backup import keys as k
from ddb_backup.errors import BackupError, UserError
from ddb_backup.store import ObjectStore
from ddb_backup.table_schema import create_table_args, describe_table, load_schema

ON_DEMAND = "PAY_PER_REQUEST"
PROVISIONED = "PROVISIONED"
ACTIVE_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Target:
    """The table a restore writes to."""

    name: str
    key_schema: k.KeySchema
    created: bool  # by this restore (so it was empty)
    exists: bool = True  # False only in a dry run that would create it


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
        key_schema = k.KeySchema.from_describe_table(existing)
        if schema is not None and k.KeySchema.from_describe_table(schema) != key_schema:
            raise UserError(
                f"table {target!r} has the key {key_schema.attribute_names}, the backup's table has "
                f"{k.KeySchema.from_describe_table(schema).attribute_names}",
                "restore into a new table (--to-table NEW_NAME); it is created with the right key",
            )
        if not (overwrite or resuming) and not is_empty(client, target):
            raise UserError(
                f"table {target!r} is not empty",
                "add --overwrite to write into it (and --sync to also delete items absent at TIME), "
                "or choose a new --to-table",
            )
        return Target(target, key_schema, created=False)
    if schema is None:
        raise UserError(
            f"table {target!r} does not exist and no schema of the source table was found "
            "(none saved with the backup, and the source table is gone)",
            "create the target table yourself with the source's key, then run again",
        )
    if dry_run:
        return Target(target, k.KeySchema.from_describe_table(schema), created=True, exists=False)
    client.create_table(**create_table_args(schema, target))
    wait_active(client, target, sleep=sleep)
    return Target(target, k.KeySchema.from_describe_table(schema), created=True)


def wait_active(client: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
    deadline = time.monotonic() + ACTIVE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        table_description = describe_table(client, table)
        if table_description is not None and table_description.get("TableStatus", "ACTIVE") == "ACTIVE":
            return
        sleep(1.0)
    raise BackupError(f"table {table!r} did not become ACTIVE within {ACTIVE_TIMEOUT_SECONDS:.0f} s")
