"""The bucket the command-line tests run against (in-process moto, inside ``mock_aws``), and how they call
the command: shared by tests/test_cli_*.py so each builds it the same, cheap way."""

from __future__ import annotations

import time
from typing import Any

import boto3
from click.testing import CliRunner, Result

from builders import put
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.cli import cli
from ddb_backup.format import keys as k
from ddb_backup.store.s3 import S3Store

BUCKET = "backups"
NOW = time.time()
AT = NOW - 600  # the event time of every change in the bucket (written to S3 at about NOW)
SCHEMA = k.KeySchema("pk", "sk")


def key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"p{n}"}, "sk": {"N": str(n)}}


def fill_bucket() -> Any:
    """A versioned bucket: `orders` under prefix `prod` (3 items), `teams` under `prod` with tenants
    `acme` and `globex`; the live table `orders` (no stream). Returns the DynamoDB client."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    store = S3Store(s3, BUCKET)
    plain = Capture(store, CaptureSettings(prefix="prod"), lambda table: SCHEMA)
    assert not plain.process([put(key(n), {"v": {"N": str(n)}}, at=AT) for n in range(3)]).failures
    tenanted = Capture(store, CaptureSettings(prefix="prod", tenant_column="org"), lambda table: SCHEMA)
    records = [put(key(n), {"org": {"S": org}}, table="teams", at=AT) for n, org in enumerate(["acme", "globex"])]
    assert not tenanted.process(records).failures
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def tables_of(dynamodb: Any) -> list[str]:
    """The DynamoDB tables that exist (a refused command must have created none)."""
    return list(dynamodb.list_tables()["TableNames"])


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def error_lines(result: Result) -> int:
    """How many lines of the output say ``error:`` (a user error prints exactly one)."""
    return sum(line.lower().startswith("error:") for line in result.output.splitlines())


def one_line_error(result: Result, code: int) -> bool:
    """The command ended with exit ``code``, one ``error:`` line and no uncaught exception."""
    return result.exit_code == code and isinstance(result.exception, SystemExit) and error_lines(result) == 1
