"""export's `aws dynamodb import-table` call, complete from the saved schema (issue 14.4)."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.validate import validate_parameters
from click.testing import CliRunner
from moto import mock_aws

from builders import put
from ddb_backup.cli import cli
from ddb_backup.format.table_schema import reduce_description, save_schema
from ddb_backup.inspect.import_call import import_call
from ddb_backup.store.s3 import S3Store
from inspect_support import BUCKET, backed_up, versioned_bucket

KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
PROJECTION = {"ProjectionType": "ALL"}
TABLE: dict[str, Any] = {
    "TableName": "orders",
    "KeySchema": KEYS,
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
        {"AttributeName": "g", "AttributeType": "S"},
        {"AttributeName": "l", "AttributeType": "N"},
    ],
    "BillingModeSummary": {"BillingMode": "PROVISIONED"},
    "ProvisionedThroughput": {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3, "NumberOfDecreasesToday": 0},
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "by-g",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
            "Projection": PROJECTION,
            "ProvisionedThroughput": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 1},
        }
    ],
    "LocalSecondaryIndexes": [
        {
            "IndexName": "by-l",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "l", "KeyType": "RANGE"}],
            "Projection": PROJECTION,
        }
    ],
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
}


def valid_import_table_request(request: dict[str, Any]) -> None:
    """The request passes botocore's own validation of DynamoDB's ImportTable input."""
    model = boto3.client("dynamodb", region_name="us-east-1").meta.service_model.operation_model("ImportTable")
    validate_parameters(request, model.input_shape)


def test_the_call_carries_the_gsis_the_billing_mode_and_the_throughput_and_warns_about_lsis() -> None:
    call = import_call("s3://exports/run-1/", "zstd", reduce_description(TABLE))
    creation = call.request["TableCreationParameters"]
    assert creation["BillingMode"] == "PROVISIONED"
    assert creation["ProvisionedThroughput"] == {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}
    assert [index["IndexName"] for index in creation["GlobalSecondaryIndexes"]] == ["by-g"]
    assert creation["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] == {
        "ReadCapacityUnits": 2,
        "WriteCapacityUnits": 1,
    }
    assert "LocalSecondaryIndexes" not in creation and "StreamSpecification" not in creation
    assert sorted(d["AttributeName"] for d in creation["AttributeDefinitions"]) == ["g", "pk", "sk"]
    assert any("by-l" in warning and "local secondary" in warning for warning in call.warnings)
    valid_import_table_request(call.request)
    argv = shlex.split(call.command)
    assert argv[:3] == ["aws", "dynamodb", "import-table"]
    assert json.loads(argv[argv.index("--table-creation-parameters") + 1]) == creation
    assert argv[argv.index("--s3-bucket-source") + 1] == "S3Bucket=exports,S3KeyPrefix=run-1/data/"


def test_an_on_demand_table_has_no_throughput_and_an_unknown_schema_gives_placeholders_and_says_so() -> None:
    on_demand = {**TABLE, "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}}
    on_demand.pop("LocalSecondaryIndexes")
    call = import_call("s3://exports/x", "gzip", reduce_description(on_demand))
    creation = call.request["TableCreationParameters"]
    assert creation["BillingMode"] == "PAY_PER_REQUEST" and "ProvisionedThroughput" not in creation
    assert "ProvisionedThroughput" not in creation["GlobalSecondaryIndexes"][0]
    assert not call.warnings
    valid_import_table_request(call.request)
    unknown = import_call("s3://exports/x", "gzip", None)
    assert any("placeholder" in warning for warning in unknown.warnings)


@mock_aws
def test_export_prints_the_complete_call_from_the_saved_schema_and_writes_it_to_the_manifest(tmp_path: Path) -> None:
    s3 = versioned_bucket()
    store = S3Store(s3, BUCKET)
    backed_up(store, [put({"pk": {"S": "a"}, "sk": {"N": "1"}}, at=time.time() - 100)])
    save_schema(store, "", TABLE)  # the table itself is gone: only the saved schema knows it
    target = tmp_path / "export"
    result = CliRunner().invoke(
        cli, ["export", "--bucket", BUCKET, "--table", "orders", "--at", "-1s", "--to", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert '"IndexName":"by-g"' in result.output and '"BillingMode":"PROVISIONED"' in result.output
    assert "cannot create local secondary indexes" in result.output
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["import_table"]["TableCreationParameters"]["GlobalSecondaryIndexes"][0]["IndexName"] == "by-g"
    valid_import_table_request(manifest["import_table"])
