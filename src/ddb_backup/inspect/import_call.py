"""The ``aws dynamodb import-table`` call that loads an export into a new table (DynamoDB's Import from S3).

Built from the table's saved schema (``table_schema``; the live DescribeTable answer has the same shape):
key schema, the attribute definitions the keys and global secondary indexes use, billing mode,
provisioned throughput (table and each GSI), the GSIs. What Import from S3 cannot do is said, not
hidden: ``TableCreationParameters`` has no local secondary indexes (an LSI can only be made when a
table is created, so an imported table never has one) and no stream setting.
Source: DynamoDB API reference, ImportTable / TableCreationParameters.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ddb_backup.format.table_schema import create_table_args

DATA = "data/"
PLACEHOLDER_TABLE: dict[str, Any] = {
    "TableName": "NEW_TABLE",
    "KeySchema": [{"AttributeName": "HASH_KEY", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "HASH_KEY", "AttributeType": "S"}],
    "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
}
CREATION_FIELDS = (
    "TableName",
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "GlobalSecondaryIndexes",
)


@dataclass
class ImportCall:
    """The ImportTable request (API JSON, as written to the manifest), its CLI spelling, and warnings."""

    request: dict[str, Any]
    command: str
    warnings: list[str] = field(default_factory=list)


def _key_attributes(*key_schemas: list[Mapping[str, Any]]) -> set[str]:
    return {element["AttributeName"] for schema in key_schemas for element in schema}


def import_call(destination: str, compression_type: str, schema: Mapping[str, Any] | None) -> ImportCall:
    """``destination`` ``s3://BUCKET/PREFIX`` of the export; ``compression_type`` ImportTable's
    ``InputCompressionType`` (GZIP, ZSTD, NONE) or our ``--compress`` name; ``schema`` a saved schema
    or DescribeTable ``Table``, None when neither is known (placeholders, and a warning)."""
    warnings = []
    if schema is None:
        schema = PLACEHOLDER_TABLE
        warnings.append(
            "the table's schema is unknown (no saved schema, table not reachable): the call has placeholder "
            "keys (HASH_KEY); run full-backup to save the schema, or edit the call"
        )
    args = create_table_args(schema, f"{schema['TableName']}-restored")
    creation = {name: args[name] for name in CREATION_FIELDS if name in args}
    used = _key_attributes(args["KeySchema"], *(index["KeySchema"] for index in args.get("GlobalSecondaryIndexes", [])))
    creation["AttributeDefinitions"] = [d for d in args["AttributeDefinitions"] if d["AttributeName"] in used]
    local = [index["IndexName"] for index in schema.get("LocalSecondaryIndexes") or []]
    if local:
        warnings.append(
            f"Import from S3 cannot create local secondary indexes: the imported table will lack {', '.join(local)} "
            "(an LSI can only be made with the table; use `ddb-backup restore` to get them)"
        )
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    compression = compression_type.upper()
    request = {
        "S3BucketSource": {"S3Bucket": bucket, "S3KeyPrefix": f"{prefix}{DATA}"},
        "InputFormat": "DYNAMODB_JSON",
        "InputCompressionType": compression,
        "TableCreationParameters": creation,
    }
    command = " ".join(
        [
            "aws dynamodb import-table",
            f"--s3-bucket-source {shlex.quote(f'S3Bucket={bucket},S3KeyPrefix={prefix}{DATA}')}",
            "--input-format DYNAMODB_JSON",
            f"--input-compression-type {compression}",
            f"--table-creation-parameters {shlex.quote(json.dumps(creation, separators=(',', ':')))}",
        ]
    )
    return ImportCall(request, command, warnings)
