"""Arguments the inspecting commands share: the live table's description, a tenant, the naming."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ddb_backup.aws.clients import UNREACHABLE
from ddb_backup.cli import preflight
from ddb_backup.cli.common import Aws
from ddb_backup.errors import UserError
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import load_schema
from ddb_backup.inspect.history import parse_key
from ddb_backup.store import ObjectStore
from ddb_backup.store.retry import RetryingStore


def describe_table(aws: Aws, table: str) -> dict[str, Any] | None:
    """The live table's DescribeTable ``Table``, or None when it does not exist or we may not describe it.
    An unreachable endpoint is not "no table": its ``EndpointConnectionError`` propagates."""
    try:
        description: dict[str, Any] = aws.client("dynamodb").describe_table(TableName=table)["Table"]
    except UNREACHABLE:
        raise
    except (BotoCoreError, ClientError):
        return None
    return description


def checked_store(
    aws: Aws, bucket: str, prefix: str = "", table: str | None = None, tenant: str | None = None, **options: Any
) -> RetryingStore:
    """The bucket's store, once ``preflight`` found the bucket and, with ``table``, that it holds the table
    (and ``tenant``, the escaped segment, when given): before a command touches anything."""
    preflight.check_bucket(aws.client("s3"), bucket)
    store = aws.store(bucket, **options)
    if table is not None:
        preflight.check_tenant(store, prefix, table, tenant)
    return store


def parse_key_option(text: str) -> k.TypedItem:
    """``--key`` for every command (history, restore): DynamoDB JSON (``{"pk":{"S":"a"}}``) or plain JSON
    (``{"pk":"a","sk":1}``); a value DynamoDB cannot hold (a 39-digit number) is a ``UserError``."""
    try:
        return parse_key(text)
    except ArithmeticError as err:  # decimal.Rounded, Inexact: DynamoDB numbers have at most 38 digits
        raise UserError(
            f"--key {text!r} holds a number DynamoDB cannot store (38 digits at most, 1E-130 to 9.99E+125)", KEY_FORMS
        ) from err
    except (TypeError, ValueError) as err:  # keys.InvalidKeyError is a ValueError
        raise UserError(f"--key {text!r} is not a key DynamoDB can hold: {err}", KEY_FORMS) from err


KEY_FORMS = 'write it as DynamoDB JSON \'{"pk":{"S":"a"},"sk":{"N":"1"}}\' or plain JSON \'{"pk":"a","sk":1}\''


def key_schema(aws: Aws, table: str, store: ObjectStore | None = None, prefix: str = "") -> k.KeySchema | None:
    """For plain-text names: from the live table when reachable, else from the schema a full backup saved
    with the backup, else None (MD5 names only)."""
    description = describe_table(aws, table)
    if description is None and store is not None:
        description = load_schema(store, prefix, table)
    return None if description is None else k.KeySchema.from_describe_table(description)


def tenant_segment(tenant: str | None) -> str | None:
    """``--tenant`` as its folder: the value escaped like the function escapes it (``%none``: no tenant)."""
    if tenant is None or tenant == k.MISSING_TENANT_SEGMENT:
        return tenant
    return k.tenant_segment_for_text(tenant)  # reserved segments as shown; else escaped, hashed when long
