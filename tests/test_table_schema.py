"""Saved table schemas: what DescribeTable says, reduced, saved, loaded, and turned into CreateTable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ddb_backup.capture.full_backup import FullBackupOptions, run_full_backup
from ddb_backup.format.table_schema import (
    create_table_args,
    load_schema,
    save_schema,
    schema_object_key,
    time_to_live_args,
)
from ddb_backup.format.version_meta import Tenancy
from ddb_backup.restore.tenancy import from_saved_schema
from ddb_backup.store.memory import MemoryStore

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "N"},
    {"AttributeName": "email", "AttributeType": "S"},
    {"AttributeName": "rank", "AttributeType": "N"},
]
GSI = {
    "IndexName": "by-email",
    "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
    "Projection": {"ProjectionType": "ALL"},
}
LSI = {
    "IndexName": "by-rank",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "rank", "KeyType": "RANGE"}],
    "Projection": {"ProjectionType": "KEYS_ONLY"},
}
STREAM = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def make_table(dynamodb: Any, name: str, *, on_demand: bool) -> None:
    extra: dict[str, Any] = (
        {"BillingMode": "PAY_PER_REQUEST", "GlobalSecondaryIndexes": [GSI]}
        if on_demand
        else {
            "BillingMode": "PROVISIONED",
            "ProvisionedThroughput": {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3},
            "GlobalSecondaryIndexes": [
                {**GSI, "ProvisionedThroughput": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 1}}
            ],
        }
    )
    dynamodb.create_table(
        TableName=name,
        KeySchema=KEYS,
        AttributeDefinitions=ATTRIBUTES,
        LocalSecondaryIndexes=[LSI],
        StreamSpecification=STREAM,
        **extra,
    )


@pytest.mark.parametrize("on_demand", [True, False], ids=["on-demand", "provisioned"])
def test_a_saved_schema_creates_a_table_like_the_original(dynamodb: Any, on_demand: bool) -> None:
    # GIVEN a table with both kinds of index, a stream and TTL, and its saved schema
    make_table(dynamodb, "orders", on_demand=on_demand)
    dynamodb.update_time_to_live(
        TableName="orders", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )
    store = MemoryStore()
    ttl = dynamodb.describe_time_to_live(TableName="orders")["TimeToLiveDescription"]
    save_schema(store, "/nightly/", dynamodb.describe_table(TableName="orders"), time_to_live=ttl, clock=lambda: 5.0)
    # WHEN restore loads it and creates a target table from it
    schema = load_schema(store, "nightly", "orders")
    assert schema is not None
    dynamodb.create_table(**create_table_args(schema, "orders-restored"))
    ttl_args = time_to_live_args(schema, "orders-restored")
    assert ttl_args is not None
    dynamodb.update_time_to_live(**ttl_args)
    # THEN the target has the same keys, indexes, billing, stream and TTL settings
    original = dynamodb.describe_table(TableName="orders")["Table"]
    restored = dynamodb.describe_table(TableName="orders-restored")["Table"]
    for field in ("KeySchema", "AttributeDefinitions", "StreamSpecification"):
        assert restored[field] == original[field]
    assert restored.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == (
        "PAY_PER_REQUEST" if on_demand else "PROVISIONED"
    )
    assert [i["IndexName"] for i in restored["GlobalSecondaryIndexes"]] == ["by-email"]
    assert [i["IndexName"] for i in restored["LocalSecondaryIndexes"]] == ["by-rank"]
    if not on_demand:
        assert restored["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
        assert restored["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["WriteCapacityUnits"] == 1
    ttl_now = dynamodb.describe_time_to_live(TableName="orders-restored")["TimeToLiveDescription"]
    assert ttl_now["AttributeName"] == "expires"
    assert schema["saved_at"] == 5.0
    assert schema["format"] == 1


def test_the_schema_lives_in_the_reserved_folder_and_keeps_only_the_documented_fields(dynamodb: Any) -> None:
    make_table(dynamodb, "orders", on_demand=True)
    store = MemoryStore()
    save_schema(store, "", dynamodb.describe_table(TableName="orders"))
    key = schema_object_key("", "orders")
    assert key == "~ddb-backup/tables/orders/schema.json"
    saved = json.loads(store.get(key).body)
    assert set(saved) <= {
        "format",
        "saved_at",
        "TableName",
        "KeySchema",
        "AttributeDefinitions",
        "BillingModeSummary",
        "ProvisionedThroughput",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "StreamSpecification",
        "TimeToLiveDescription",
        "tenant_attribute",
    }
    assert set(saved["ProvisionedThroughput"]) == {"ReadCapacityUnits", "WriteCapacityUnits"}


def test_no_saved_schema_is_none_and_a_newer_save_wins() -> None:
    store = MemoryStore()
    assert load_schema(store, "p", "orders") is None
    table = {"TableName": "orders", "KeySchema": KEYS[:1], "AttributeDefinitions": ATTRIBUTES[:1]}
    save_schema(store, "p", {"Table": table}, clock=lambda: 1.0)
    save_schema(store, "p", {"Table": {**table, "KeySchema": KEYS}}, clock=lambda: 2.0)
    loaded = load_schema(store, "p", "orders")
    assert loaded is not None
    assert (loaded["saved_at"], loaded["KeySchema"]) == (2.0, KEYS)
    assert loaded["BillingModeSummary"] == {"BillingMode": "PROVISIONED"}  # DescribeTable's default
    assert time_to_live_args(loaded, "x") is None


@pytest.mark.parametrize("tenant_column", [None, "tenant"])
def test_full_backup_saves_its_tenant_attribute_for_readers_of_the_original_tools_objects(
    dynamodb: Any, tenant_column: str | None
) -> None:
    # GIVEN a full backup with (or without) a MultiTenancyColumn
    make_table(dynamodb, "orders", on_demand=True)
    store = MemoryStore()
    run_full_backup(dynamodb, store, "bk", "orders", FullBackupOptions(prefix="p", tenant_column=tenant_column))
    # THEN the saved schema records it, and readers learn the table's tenant attribute from it
    saved = load_schema(store, "p", "orders")
    assert saved is not None and saved["tenant_attribute"] == tenant_column
    assert from_saved_schema(saved) == Tenancy(tenant_column)
    # AND a schema saved without the record says nothing
    assert from_saved_schema({k: v for k, v in saved.items() if k != "tenant_attribute"}) is None
