"""The restore's target table: found or created, and checked before anything is written.

A missing target is created like the source: from the schema saved with the backup
(docs/format.md, "Saved table schemas") or from the live source table's DescribeTable. Both have the
same shape, so one function turns either into CreateTable arguments. TTL is never switched on for a
restored table: it would start deleting restored items whose expiry time has passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup import keys as k
from ddb_backup.errors import BackupError, UserError
from ddb_backup.store import NoSuchVersion, ObjectStore

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


def saved_schema(store: ObjectStore, prefix: str, table: str) -> dict[str, Any] | None:
    """The newest schema saved with the backup, ``[prefix/]~ddb-backup/tables/<table>/schema.json``."""
    parts = [part for part in prefix.strip("/").split("/") if part] if prefix else []
    path = "/".join([*parts, "~ddb-backup", "tables", k.escape_segment(table), "schema.json"])
    try:
        loaded: dict[str, Any] = json.loads(store.get(path).body)
    except NoSuchVersion:
        return None
    return loaded


def describe(client: Any, table: str) -> dict[str, Any] | None:
    """DescribeTable's ``Table``, or None when there is no such table."""
    try:
        answer: dict[str, Any] = client.describe_table(TableName=table)["Table"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return answer


def create_table_args(schema: Mapping[str, Any], target: str) -> dict[str, Any]:
    """CreateTable arguments for a table like ``schema`` (a saved schema or a DescribeTable ``Table``)."""
    mode = (schema.get("BillingModeSummary") or {}).get("BillingMode") or PROVISIONED
    args: dict[str, Any] = {
        "TableName": target,
        "KeySchema": [dict(element) for element in schema["KeySchema"]],
        "AttributeDefinitions": [dict(element) for element in schema["AttributeDefinitions"]],
        "BillingMode": mode,
    }
    if mode == PROVISIONED:
        args["ProvisionedThroughput"] = _throughput(schema.get("ProvisionedThroughput"))
    indexes = [_index_args(index, mode) for index in schema.get("GlobalSecondaryIndexes") or []]
    if indexes:
        args["GlobalSecondaryIndexes"] = indexes
    local = [_index_args(index, ON_DEMAND) for index in schema.get("LocalSecondaryIndexes") or []]
    if local:
        args["LocalSecondaryIndexes"] = local
    stream = schema.get("StreamSpecification") or {}
    if stream.get("StreamEnabled"):
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return args


def _index_args(index: Mapping[str, Any], mode: str) -> dict[str, Any]:
    args = {name: index[name] for name in ("IndexName", "KeySchema", "Projection")}
    if mode == PROVISIONED:
        args["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
    return args


def _throughput(value: Mapping[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {name: max(1, int(value.get(name) or 1)) for name in ("ReadCapacityUnits", "WriteCapacityUnits")}


def source_schema(store: ObjectStore, client: Any, prefix: str, source: str) -> dict[str, Any] | None:
    """The source table's schema: the one saved with the backup, else the live table's."""
    return saved_schema(store, prefix, source) or describe(client, source)


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
    existing = describe(client, target)
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
        table_description = describe(client, table)
        if table_description is not None and table_description.get("TableStatus", "ACTIVE") == "ACTIVE":
            return
        sleep(1.0)
    raise BackupError(f"table {table!r} did not become ACTIVE within {ACTIVE_TIMEOUT_SECONDS:.0f} s")
