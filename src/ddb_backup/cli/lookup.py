"""Arguments the inspecting commands share: the live table's description, a tenant, the naming."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ddb_backup import keys as k
from ddb_backup.cli.common import Aws
from ddb_backup.store import ObjectStore
from ddb_backup.table_schema import load_schema


def describe_table(aws: Aws, table: str) -> dict[str, Any] | None:
    """The live table's DescribeTable ``Table``, or None when it cannot be reached (deleted, no access)."""
    try:
        description: dict[str, Any] = aws.client("dynamodb", max_attempts=2).describe_table(TableName=table)["Table"]
    except (BotoCoreError, ClientError):
        return None
    return description


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
    return k.tenant_segment({"S": tenant})
