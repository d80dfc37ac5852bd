"""The template's grants are enough for what the code really does (issue 15.1, the other direction).

Every AWS request the function, ``full-backup`` and ``run`` make against moto is recorded, turned into
the IAM action, resource and context keys AWS would authorise (service authorization reference for S3
and DynamoDB), and evaluated against the role the template gives that principal. A writer that starts
making a new kind of request (a listing, a versioned HEAD) fails here before it fails in AWS with
AccessDenied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from click.testing import CliRunner
from moto import mock_aws

from builders import event, put, record, remove
from ddb_backup import handler as h
from ddb_backup.cli import cli
from iam_eval import Request, allowed
from test_template import policy_of, resolve

REGION, ACCOUNT, BUCKET, TABLE = "us-east-1", "123456789012", "grants-bucket", "orders"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"

Call = tuple[str, str, dict[str, Any]]  # service, operation, parameters


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Every API call any boto3 client makes from now on."""
    made: list[Call] = []
    original = BaseClient._make_api_call

    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        made.append((self.meta.service_model.service_name, operation_name, dict(api_params)))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return made


def authorised_as(call: Call, stream_arn: str) -> Request:
    """The request IAM evaluates for one API call."""
    service, operation, params = call
    context = {"s3:ResourceAccount": ACCOUNT}
    if service == "s3":
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        versioned = "VersionId" in params
        s3_objects = {
            "PutObject": "s3:PutObject",
            "DeleteObject": "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject",
            "GetObject": "s3:GetObjectVersion" if versioned else "s3:GetObject",
            "HeadObject": "s3:GetObjectVersion" if versioned else "s3:GetObject",
        }
        if operation in s3_objects:
            return Request(s3_objects[operation], f"{bucket}/{params['Key']}", context)
        listings = {"ListObjectVersions": "s3:ListBucketVersions", "ListObjectsV2": "s3:ListBucket"}
        if operation in listings:
            return Request(listings[operation], bucket, {**context, "s3:prefix": params.get("Prefix", "")})
        if operation == "HeadBucket":  # authorised as s3:ListBucket, with no prefix
            return Request("s3:ListBucket", bucket, context)
        assert operation == "GetBucketVersioning", f"no IAM mapping for s3 {operation}"
        return Request("s3:GetBucketVersioning", bucket, context)
    if service == "dynamodbstreams":
        if operation == "ListStreams":
            return Request("dynamodb:ListStreams", f"{TABLE_ARN}/stream/*")
        return Request(f"dynamodb:{operation}", params.get("StreamArn", stream_arn))
    assert service == "dynamodb", f"no IAM mapping for {service}"
    return Request(f"dynamodb:{operation}", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{params['TableName']}")


def denied_calls(calls: list[Call], statements: list[dict[str, Any]], stream_arn: str) -> list[str]:
    requests = [authorised_as(call, stream_arn) for call in calls]
    return sorted({f"{r.action} {r.resource} {dict(r.context)}" for r in requests if not allowed(statements, r)})


@pytest.fixture
def source() -> Iterator[tuple[Any, Any, str]]:
    """moto: the table (key email/sk, with its stream) and a versioned bucket."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        table = ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("email", "sk")],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield ddb, s3, table["TableDescription"]["LatestStreamArn"]


@pytest.mark.parametrize("prefix", ["", "backups/prod"], ids=["no-prefix", "prefix"])
def test_the_function_role_allows_every_request_the_function_makes(
    source: tuple[Any, Any, str], calls: list[Call], monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    ddb, s3, stream_arn = source
    # GIVEN the function, plain-text names and tenants (the most requests), with the role the template gives it
    env = {"BackupBucket": BUCKET, "BackupPrefix": prefix, "PlainTextKeyAsFilename": "true", "MultiTenancyColumn": "t"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ExpectedBucketOwner", ACCOUNT)
    monkeypatch.setattr(h, "make_client", {"s3": s3, "dynamodb": ddb}.get)
    parameters = {"SourceStreamArn": stream_arn, "ExistingBucketName": BUCKET, "ExpectedBucketOwner": ACCOUNT,
                  "BackupPrefix": prefix, "PlainTextKeyAsFilename": "true", "MultiTenancyColumn": "t"}  # fmt: skip
    statements = policy_of(resolve(**parameters), "BackupFunctionRole")
    key = {"email": {"S": "a@example.com"}, "sk": {"S": "1"}}
    records = [
        put(key, {"t": {"S": "acme"}}, seq=1, table=TABLE),
        record("MODIFY", key, new={**key, "t": {"S": "umbrella"}}, old={**key, "t": {"S": "acme"}}, seq=2, table=TABLE),
        remove(key, {"t": {"S": "umbrella"}}, seq=3, table=TABLE),
    ]
    # WHEN it backs up a batch, then the same batch again in a fresh container (a replay)
    h.reset_runtime()
    try:
        assert h.handler(event(*records), None) == {"batchItemFailures": []}
        h.reset_runtime()
        assert h.handler(event(*records), None) == {"batchItemFailures": []}
    finally:
        h.reset_runtime()
    # THEN its role allows every request it made
    assert {operation for _, operation, _ in calls} >= {"GetBucketVersioning", "PutObject", "DeleteObject"}
    assert denied_calls(calls, statements, stream_arn) == []


def test_the_operator_role_allows_every_request_of_full_backup_and_run(
    source: tuple[Any, Any, str], calls: list[Call], tmp_path: Any
) -> None:
    ddb, _, stream_arn = source
    for n in range(5):
        ddb.put_item(TableName=TABLE, Item={"email": {"S": f"u{n}@example.com"}, "sk": {"S": "1"}})
    parameters = {"SourceStreamArn": stream_arn, "ExistingBucketName": BUCKET, "ExpectedBucketOwner": ACCOUNT,
                  "BackupPrefix": "p", "OperatorPrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/ops"}  # fmt: skip
    statements = policy_of(resolve(**parameters), "OperatorRole")
    base = ["--bucket", BUCKET, "--prefix", "p", "--table", TABLE, "--expected-bucket-owner", ACCOUNT]
    calls.clear()
    # WHEN full-backup, then run (its checkpoint in the bucket), back the table up
    for command in (["full-backup", *base], ["run", *base, "--until-idle"], ["full-backup", *base]):
        result = CliRunner().invoke(cli, command, catch_exceptions=False)
        assert result.exit_code == 0, (command, result.output)
    # THEN the operator role allows every request they made
    operations = {operation for _, operation, _ in calls}
    assert {"Scan", "DescribeTable", "PutObject", "GetShardIterator", "GetRecords"} <= operations
    assert denied_calls(calls, statements, stream_arn) == []
