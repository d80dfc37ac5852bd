"""Saved table schemas: what a restore needs to create a target table (docs/format.md, "Saved table schemas").

``full-backup`` saves the ``Table`` part of DescribeTable reduced to the settings CreateTable takes,
plus the TTL settings; restore reads the newest version and turns it into CreateTable arguments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup.format import keys as k
from ddb_backup.format.version_meta import Tenancy
from ddb_backup.store import NoSuchVersion, ObjectStore, require_version

SCHEMA_FORMAT = 1
OWN_FOLDER = "~ddb-backup"
ON_DEMAND = "PAY_PER_REQUEST"
PROVISIONED = "PROVISIONED"
TENANT_ATTRIBUTE = "tenant_attribute"  # the writer's MultiTenancyColumn, or null (docs/format.md)


def describe_table(dynamodb: Any, table: str) -> dict[str, Any] | None:
    """DescribeTable's ``Table``, or None when there is no such table."""
    try:
        answer: dict[str, Any] = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return answer


def schema_object_key(prefix: str, table: str) -> str:
    """``[prefix/]~ddb-backup/tables/<TableName>/schema.json``."""
    return "/".join([*k.prefix_parts(prefix), OWN_FOLDER, "tables", k.escape_segment(table), "schema.json"])


def _throughput(value: Mapping[str, Any] | None) -> dict[str, int] | None:
    if not value:
        return None
    return {name: int(value.get(name, 0)) for name in ("ReadCapacityUnits", "WriteCapacityUnits")}


def _index(index: Mapping[str, Any], *, with_throughput: bool) -> dict[str, Any]:
    reduced: dict[str, Any] = {name: index[name] for name in ("IndexName", "KeySchema", "Projection") if name in index}
    throughput = _throughput(index.get("ProvisionedThroughput")) if with_throughput else None
    if throughput is not None:
        reduced["ProvisionedThroughput"] = throughput
    return reduced


def reduce_description(table: Mapping[str, Any], time_to_live: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The saved schema from DescribeTable's ``Table`` (and DescribeTimeToLive's ``TimeToLiveDescription``)."""
    schema: dict[str, Any] = {
        "format": SCHEMA_FORMAT,
        "TableName": table["TableName"],
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "BillingModeSummary": {"BillingMode": billing_mode(table)},
    }
    throughput = _throughput(table.get("ProvisionedThroughput"))
    if throughput is not None:
        schema["ProvisionedThroughput"] = throughput
    for name, with_throughput in (("GlobalSecondaryIndexes", True), ("LocalSecondaryIndexes", False)):
        if table.get(name):
            schema[name] = [_index(index, with_throughput=with_throughput) for index in table[name]]
    if table.get("StreamSpecification"):
        schema["StreamSpecification"] = dict(table["StreamSpecification"])
    if time_to_live:
        schema["TimeToLiveDescription"] = {
            name: time_to_live[name] for name in ("AttributeName", "TimeToLiveStatus") if name in time_to_live
        }
    return schema


def billing_mode(table: Mapping[str, Any]) -> str:
    """DescribeTable leaves ``BillingModeSummary`` out for tables that were always provisioned."""
    return str((table.get("BillingModeSummary") or {}).get("BillingMode") or PROVISIONED)


def save_schema(
    store: ObjectStore,
    prefix: str,
    describe_table_answer: Mapping[str, Any],
    *,
    time_to_live: Mapping[str, Any] | None = None,
    tenancy: Tenancy | None = None,
    clock: Any = time.time,
) -> dict[str, Any]:
    """Write the table's schema as a new version of its ``schema.json``; returns what was saved.

    ``describe_table_answer`` is DescribeTable's answer (or its ``Table`` part); ``time_to_live`` is
    DescribeTimeToLive's ``TimeToLiveDescription`` (CreateTable cannot set TTL; restore applies it after).
    ``tenancy`` is the writer's ``MultiTenancyColumn`` (``Tenancy(None)``: none), saved as
    ``tenant_attribute`` for readers of versions that do not record it (``tenancy.learn_table_tenancy``);
    left out when not given.
    """
    table = describe_table_answer.get("Table", describe_table_answer)
    schema = reduce_description(table, time_to_live)
    if tenancy is not None:
        schema[TENANT_ATTRIBUTE] = tenancy.attribute
    schema["saved_at"] = round(float(clock()), 3)
    body = json.dumps(schema, sort_keys=True, indent=1, default=str).encode("utf-8")
    saved = store.put(schema_object_key(prefix, schema["TableName"]), body, {"format": "1", "writer": "full-backup"})
    require_version(saved.version_id, f"PutObject of the schema of table {schema['TableName']!r}")
    return schema


def load_schema(store: ObjectStore, prefix: str, table: str) -> dict[str, Any] | None:
    """The newest saved schema of ``table``, or ``None`` when none was saved."""
    try:
        stored = store.get(schema_object_key(prefix, table))
    except NoSuchVersion:
        return None
    loaded: dict[str, Any] = json.loads(stored.body)
    return loaded


def create_table_args(schema: Mapping[str, Any], target_name: str) -> dict[str, Any]:
    """CreateTable arguments for a table like ``schema`` (a saved schema or a live DescribeTable ``Table``,
    which have the same shape), named ``target_name``."""
    mode = (schema.get("BillingModeSummary") or {}).get("BillingMode") or PROVISIONED
    args: dict[str, Any] = {
        "TableName": target_name,
        "KeySchema": schema["KeySchema"],
        "AttributeDefinitions": schema["AttributeDefinitions"],
        "BillingMode": mode,
    }
    if mode == PROVISIONED:
        args["ProvisionedThroughput"] = _capacity(schema.get("ProvisionedThroughput"))
    if schema.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = [_index_args(index, mode) for index in schema["GlobalSecondaryIndexes"]]
    if schema.get("LocalSecondaryIndexes"):
        args["LocalSecondaryIndexes"] = [
            {name: index[name] for name in ("IndexName", "KeySchema", "Projection")}
            for index in schema["LocalSecondaryIndexes"]
        ]
    stream = schema.get("StreamSpecification") or {}
    if stream.get("StreamEnabled"):
        args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return args


def _index_args(index: Mapping[str, Any], mode: str) -> dict[str, Any]:
    args = {name: index[name] for name in ("IndexName", "KeySchema", "Projection")}
    if mode == PROVISIONED:
        args["ProvisionedThroughput"] = _capacity(index.get("ProvisionedThroughput"))
    return args


def _capacity(value: Mapping[str, Any] | None) -> dict[str, int]:
    """Capacity for CreateTable: the saved (or live) units, at least 1 each."""
    value = value or {}
    return {name: max(1, int(value.get(name) or 1)) for name in ("ReadCapacityUnits", "WriteCapacityUnits")}


def time_to_live_args(schema: Mapping[str, Any], target_name: str) -> dict[str, Any] | None:
    """UpdateTimeToLive arguments when the saved table had TTL on (CreateTable cannot set it)."""
    ttl = schema.get("TimeToLiveDescription") or {}
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or not ttl.get("AttributeName"):
        return None
    return {
        "TableName": target_name,
        "TimeToLiveSpecification": {"Enabled": True, "AttributeName": ttl["AttributeName"]},
    }
