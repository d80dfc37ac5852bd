"""template.yaml and backup-account.yaml, resolved for concrete parameters: least privilege, safe
bucket defaults, tamper resistance, the stream mapping and the alarms are what docs/deploy.md promises.

A small evaluator resolves the intrinsic functions the templates use (Ref, Fn::If, Fn::Sub, Fn::Select,
Fn::Split, Fn::Join, Fn::GetAtt, conditions), so the IAM statements are checked as AWS would see them;
``tests/iam_eval.py`` then decides which requests each principal's statements allow.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from iam_eval import Request, allowed, denied

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
BACKUP_TEMPLATE = TEMPLATE.with_name("backup-account.yaml")
BACKUP_ACCOUNT = "210987654321"
PARTITION, REGION, ACCOUNT, STACK = "aws", "eu-west-1", "123456789012", "orders-backup"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"
STREAM_ARN = f"{TABLE_ARN}/stream/2026-11-27T10:00:00.000"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NO_VALUE = object()
PSEUDO = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK}


@dataclass
class Resolver:
    """Evaluates the template's intrinsic functions; a resource's Ref is ``<Name>``, GetAtt ``<Name.Attr>``."""

    template: dict[str, Any]
    parameters: dict[str, Any]
    conditions: dict[str, bool] = field(default_factory=dict)
    pseudo: dict[str, str] = field(default_factory=lambda: dict(PSEUDO))

    def __post_init__(self) -> None:
        defaults = {name: spec.get("Default") for name, spec in self.template["Parameters"].items()}
        self.parameters = {**defaults, **self.parameters}
        for name in self.template["Conditions"]:
            self.condition(name)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if self.template["Parameters"].get(name, {}).get("Type") == "CommaDelimitedList":
            return str(self.parameters.get(name) or "").split(",")
        return self.parameters.get(name, f"<{name}>")

    def sub(self, args: Any) -> str:
        text, variables = (args, {}) if isinstance(args, str) else (args[0], self.value(args[1]))

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            return f"<{name}>" if "." in name else str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def function(self, name: str, args: Any) -> Any:
        handlers = {
            "Ref": lambda: self.ref(args),
            "Condition": lambda: self.condition(args),
            "Fn::If": lambda: self.value(args[1] if self.condition(args[0]) else args[2]),
            "Fn::Equals": lambda: str(self.value(args[0])) == str(self.value(args[1])),
            "Fn::Not": lambda: not self.value(args[0]),
            "Fn::And": lambda: all(self.value(arg) for arg in args),
            "Fn::Or": lambda: any(self.value(arg) for arg in args),
            "Fn::Sub": lambda: self.sub(args),
            "Fn::GetAtt": lambda: f"<{'.'.join(args) if isinstance(args, list) else args}>",
            "Fn::Select": lambda: self.value(args[1])[int(args[0])],
            "Fn::Split": lambda: str(self.value(args[1])).split(args[0]),
            "Fn::Join": lambda: args[0].join(str(part) for part in self.value(args[1])),
        }
        return handlers[name]()

    def value(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            name, args = next(iter(node.items()))
            if name in ("Ref", "Condition") or name.startswith("Fn::"):
                return self.function(name, args)
        if isinstance(node, dict):
            resolved = {key: self.value(item) for key, item in node.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(node, list):
            return [item for item in (self.value(entry) for entry in node) if item is not NO_VALUE]
        return node

    def resources(self) -> dict[str, dict[str, Any]]:
        """Resources that exist for these parameters, their properties resolved."""
        return {
            name: {**resource, "Properties": self.value(resource.get("Properties", {}))}
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }


def resolve(**parameters: Any) -> dict[str, dict[str, Any]]:
    template = cfn_yaml.load(str(TEMPLATE))
    return Resolver(template, {"SourceStreamArn": STREAM_ARN, **parameters}).resources()


def resolve_backup_account(**parameters: Any) -> dict[str, dict[str, Any]]:
    """backup-account.yaml deployed in BACKUP_ACCOUNT for the source account ACCOUNT."""
    template = cfn_yaml.load(str(BACKUP_TEMPLATE))
    pseudo = {**PSEUDO, "AWS::AccountId": BACKUP_ACCOUNT, "AWS::StackName": "vault"}
    return Resolver(template, {"SourceAccountId": ACCOUNT, **parameters}, pseudo=pseudo).resources()


def policy_of(resources: dict[str, dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """The statements of one role's inline policies."""
    properties = resources[role]["Properties"]
    return [s for policy in properties["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(resources: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The statements of every IAM role; the stack grants through roles' inline policies only."""
    statements = []
    for resource in resources.values():
        assert resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"), "policies live on the role"
        properties = resource["Properties"]
        if resource["Type"] == "AWS::Serverless::Function":
            assert "Policies" not in properties, "SAM's policies would add its broad managed policies"
        if resource["Type"] == "AWS::IAM::Role":
            assert "ManagedPolicyArns" not in properties
            statements += [s for policy in properties["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    return statements


def grants(resources: dict[str, dict[str, Any]], role: str | None = None) -> dict[str, set[str]]:
    """Every allowed action of every IAM policy in the stack (or of one role), and its resources."""
    granted: dict[str, set[str]] = {}
    role_statements(resources)  # the shape checks
    statements = policy_of(resources, role) if role else role_statements(resources)
    for statement in statements:
        assert "NotAction" not in statement and "NotResource" not in statement
        if statement["Effect"] == "Deny":
            continue  # the guards against nested stacks' folders; their reach is evaluated below
        for action in as_list(statement["Action"]):
            granted.setdefault(action, set()).update(as_list(statement["Resource"]))
    return granted


def expected_grants(bucket: str, objects: str, *, plain_text: bool, kms: bool) -> dict[str, set[str]]:
    expected = {
        "dynamodb:DescribeStream": {STREAM_ARN},
        "dynamodb:GetRecords": {STREAM_ARN},
        "dynamodb:GetShardIterator": {STREAM_ARN},
        "dynamodb:ListStreams": {f"{TABLE_ARN}/stream/*"},
        "s3:GetBucketVersioning": {f"arn:aws:s3:::{bucket}"},
        "s3:PutObject": {f"arn:aws:s3:::{bucket}/{objects}"},
        "s3:DeleteObject": {f"arn:aws:s3:::{bucket}/{objects}"},
        "s3:GetObjectVersion": {f"arn:aws:s3:::{bucket}/{objects}"},  # capture's look (format.md rule 3)
        "s3:ListBucketVersions": {f"arn:aws:s3:::{bucket}"},  # prefix: the table's folder
        "sqs:SendMessage": {"<FailureQueue.Arn>"},
        "logs:CreateLogStream": {"<FunctionLogGroup.Arn>"},
        "logs:PutLogEvents": {"<FunctionLogGroup.Arn>"},
    }
    if plain_text:
        expected["dynamodb:DescribeTable"] = {TABLE_ARN}
    if kms:
        expected.update({"kms:GenerateDataKey": {KEY_ARN}, "kms:Decrypt": {KEY_ARN}})
    return expected


CASES = [
    pytest.param({}, "<BackupBucket>", "orders/*", False, False, id="new-bucket-no-prefix-md5"),
    pytest.param({"BackupPrefix": "backups/prod"}, "<BackupBucket>", "backups/prod/orders/*", False, False, id="pfx"),
    pytest.param(
        {"ExistingBucketName": "acme-backups", "BackupPrefix": "ddb", "PlainTextKeyAsFilename": "true"},
        "acme-backups", "ddb/orders/*", True, False, id="existing-bucket-plain-text",
    ),
    pytest.param(
        {"KmsKeyArn": KEY_ARN, "ObjectLockMode": "COMPLIANCE", "PlainTextKeyAsFilename": "true"},
        "<BackupBucket>", "orders/*", True, True, id="kms-object-lock",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("parameters", "bucket", "objects", "plain_text", "kms"), CASES)
def test_the_function_role_grants_exactly_the_scoped_actions(
    parameters: dict[str, str], bucket: str, objects: str, plain_text: bool, kms: bool
) -> None:
    # GIVEN the template resolved for these parameters
    resources = resolve(**parameters)
    # WHEN every allowed action and its resources are collected
    granted = grants(resources)
    # THEN they are exactly the scoped set: one stream, the table's folder, one table, one queue, one log group
    assert granted == expected_grants(bucket, objects, plain_text=plain_text, kms=kms)
    assert not any("*" in action for action in granted), "no wildcard actions (s3:*, dynamodb:*)"
    assert "s3:DeleteObjectVersion" not in granted
    assert all(resource != "*" for targets in granted.values() for resource in targets)


def test_a_created_bucket_has_the_safe_defaults() -> None:
    # GIVEN the template with a new bucket and its defaults
    resources = resolve()
    bucket = resources["BackupBucket"]
    properties = bucket["Properties"]
    # THEN it is versioned, private, encrypted, kept on stack deletion, and TLS-only
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert "ObjectLockConfiguration" not in properties
    deny_plain_http = resources["BackupBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny_plain_http["Effect"] == "Deny"
    assert deny_plain_http["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny_plain_http["Resource"]) == {"<BackupBucket.Arn>", "<BackupBucket.Arn>/*"}


def test_noncurrent_versions_expire_after_the_retention_period_and_object_lock_covers_it() -> None:
    # GIVEN a 90-day retention with compliance-mode Object Lock and a KMS key
    resources = resolve(RetentionDays=90, ObjectLockMode="COMPLIANCE", KmsKeyArn=KEY_ARN)
    properties = resources["BackupBucket"]["Properties"]
    # THEN old versions go 90 days after they stop being current, never current ones, and each is locked 90 days
    rules = properties["LifecycleConfiguration"]["Rules"]
    expiry = next(rule for rule in rules if "NoncurrentVersionExpiration" in rule)
    assert expiry["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    assert not any("ExpirationInDays" in rule or "ExpirationDate" in rule for rule in rules)
    assert properties["ObjectLockEnabled"] is True
    assert properties["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 90}
    encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN}


def test_an_existing_bucket_is_used_as_it_is() -> None:
    # GIVEN an existing bucket's name
    resources = resolve(ExistingBucketName="acme-backups")
    # THEN the stack creates no bucket and points the function at the existing one
    assert "BackupBucket" not in resources and "BackupBucketPolicy" not in resources
    variables = resources["BackupFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["BackupBucket"] == "acme-backups"


def test_the_function_runs_this_packages_handler_on_python_312_arm64_with_its_settings() -> None:
    # GIVEN the template with a prefix, plain-text names and a tenant column
    resources = resolve(BackupPrefix="p", PlainTextKeyAsFilename="true", MultiTenancyColumn="tenant")
    properties = resources["BackupFunction"]["Properties"]
    # THEN the function is the packaged handler, with the settings under the names the handler reads
    assert (properties["Runtime"], properties["Architectures"]) == ("python3.12", ["arm64"])
    assert properties["Handler"] == "ddb_backup.handler.handler"
    assert properties["CodeUri"] == "dist/ddb-backup-lambda.zip"
    assert properties["Environment"]["Variables"] == {
        "BackupBucket": "<BackupBucket>",
        "BackupPrefix": "p",
        "PlainTextKeyAsFilename": "true",
        "MultiTenancyColumn": "tenant",
        "ExpectedBucketOwner": ACCOUNT,
        "POWERTOOLS_SERVICE_NAME": STACK,
        "POWERTOOLS_METRICS_NAMESPACE": "DdbBackup",
    }


def test_the_stream_mapping_retries_a_bounded_time_and_keeps_what_it_gives_up_on() -> None:
    # GIVEN the template's parameters for retries
    template = cfn_yaml.load(str(TEMPLATE))
    retries, age = template["Parameters"]["MaximumRetryAttempts"], template["Parameters"]["MaximumRecordAgeInSeconds"]
    # WHEN it is resolved with batch settings
    mapping = resolve(BatchSize=500, ParallelizationFactor=4)["StreamMapping"]["Properties"]
    # THEN partial batch failures, bisection, bounded retries and age, and a failure queue are set
    assert mapping["EventSourceArn"] == STREAM_ARN
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert (mapping["BatchSize"], mapping["ParallelizationFactor"]) == (500, 4)
    assert retries["MinValue"] >= 0 and retries["MaxValue"] <= 10000, "-1 (forever) is not allowed"
    assert age["MinValue"] >= 60 and age["MaxValue"] <= 86400, "-1 (forever) is not allowed; the stream keeps 24 h"
    assert mapping["MaximumRetryAttempts"] == retries["Default"]
    assert mapping["MaximumRecordAgeInSeconds"] == age["Default"]
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": "<FailureQueue.Arn>"}}


def test_alarms_watch_errors_failed_records_lag_the_failure_queue_and_throttles() -> None:
    # GIVEN the template with an alarm e-mail
    resources = resolve(AlarmEmail="ops@example.com", IteratorAgeAlarmSeconds=900)
    # WHEN the alarms are read
    alarms = {
        (props["Namespace"], props["MetricName"]): props
        for props in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm")
    }
    # THEN each failure mode has one, and each goes to the topic the e-mail subscribes to
    assert set(alarms) == {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "IteratorAge"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("DdbBackup", "RecordsFailed"),
    }
    assert all(alarm["AlarmActions"] == ["<AlarmTopic>"] for alarm in alarms.values())
    assert alarms[("AWS/Lambda", "IteratorAge")]["Threshold"] == "900000"
    assert alarms[("DdbBackup", "RecordsFailed")]["Dimensions"] == [{"Name": "service", "Value": STACK}]
    subscription = resources["AlarmSubscription"]["Properties"]
    assert subscription == {"TopicArn": "<AlarmTopic>", "Protocol": "email", "Endpoint": "ops@example.com"}


@pytest.mark.parametrize("path", [TEMPLATE, BACKUP_TEMPLATE], ids=lambda path: path.name)
def test_every_checkov_skip_says_why(path: Path) -> None:
    # GIVEN the template's resources
    template = cfn_yaml.load(str(path))
    skips = [
        skip
        for resource in template["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    # THEN each skipped check has a justification of substance
    assert skips, "the template skips some checks; this test must see them"
    assert all(re.fullmatch(r"CKV_AWS_\d+", skip["id"]) and len(skip["comment"]) > 60 for skip in skips)


# ------------------------------------------------------------------ 15.1 each principal's reach

OTHER_ACCOUNT = BACKUP_ACCOUNT
FUNCTION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ddb-backup/{STACK}-BackupFunctionRole-AB12"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/ops"


def s3_request(action: str, bucket: str, key: str | None = None, *, owner: str = ACCOUNT, **context: str) -> Request:
    resource = f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")
    return Request(action, resource, {"s3:ResourceAccount": owner, **context})


def keys_for(root: str) -> dict[str, str]:
    """Object keys of the bucket, by what they are (docs/format.md)."""
    return {
        "item": f"{root}orders/0cc175b9c0f1b6a831c399e269772661",
        "tenant item": f"{root}orders/acme/0cc175b9c0f1b6a831c399e269772661",
        "plain-text item": f"{root}orders/a%2Fb | 1",
        "schema": f"{root}~ddb-backup/tables/orders/schema.json",
        "checkpoint": f"{root}~ddb-backup/checkpoints/orders.json",
        "other table's item": f"{root}customers/0cc175b9c0f1b6a831c399e269772661",
        "other table's schema": f"{root}~ddb-backup/tables/customers/schema.json",
        "other table's checkpoint": f"{root}~ddb-backup/checkpoints/customers.json",
        "table-name prefix twin": f"{root}orders2/0cc175b9c0f1b6a831c399e269772661",
        "outside the prefix": "orders/0cc175b9c0f1b6a831c399e269772661" if root else "x/orders/0cc1",
    }


REACH_CASES = [
    pytest.param({}, "<BackupBucket>", "", ACCOUNT, id="new-bucket"),
    pytest.param({"MultiTenancyColumn": "tenant"}, "<BackupBucket>", "", ACCOUNT, id="new-bucket-tenants"),
    pytest.param({"BackupPrefix": "backups/prod"}, "<BackupBucket>", "backups/prod/", ACCOUNT, id="new-bucket-prefix"),
    pytest.param(
        {"ExistingBucketName": "vault", "ExpectedBucketOwner": OTHER_ACCOUNT, "BackupPrefix": "ddb",
         "MultiTenancyColumn": "tenant"},
        "vault", "ddb/", OTHER_ACCOUNT, id="backup-account-bucket-prefix-tenants",
    ),
]  # fmt: skip


def own_items(parameters: dict[str, str]) -> set[str]:
    """The keys_for() items a stack's writers name: a tenant folder only with a tenant column."""
    return {"item", "plain-text item"} | ({"tenant item"} if parameters.get("MultiTenancyColumn") else set())


@pytest.mark.parametrize(("parameters", "bucket", "root", "owner"), REACH_CASES)
def test_the_function_may_put_and_delete_its_tables_items_and_nothing_else(
    parameters: dict[str, str], bucket: str, root: str, owner: str
) -> None:
    # GIVEN the function role's statements for a table 'orders'
    statements = policy_of(resolve(**parameters), "BackupFunctionRole")
    keys = keys_for(root)
    # WHEN each object key is tried with each write
    reach = {
        name
        for name, key in keys.items()
        if all(
            allowed(statements, s3_request(a, bucket, key, owner=owner)) for a in ("s3:PutObject", "s3:DeleteObject")
        )
    }
    # THEN only the table's items: never its schema, checkpoints, another table's folder or outside the prefix
    assert reach == own_items(parameters)
    for name, key in keys.items():
        for action in ("s3:PutObject", "s3:DeleteObject", "s3:GetObject"):
            assert allowed(statements, s3_request(action, bucket, key, owner=owner)) == (
                name in reach and action != "s3:GetObject"
            ), (name, action)
        assert not allowed(statements, s3_request("s3:DeleteObjectVersion", bucket, key, owner=owner))
    # AND the same bucket name owned by another account is out of reach (ExpectedBucketOwner's twin)
    assert not allowed(statements, s3_request("s3:PutObject", bucket, keys["item"], owner="999999999999"))
    assert allowed(statements, s3_request("s3:GetBucketVersioning", bucket, owner=owner))
    for action in ("s3:PutBucketVersioning", "s3:PutLifecycleConfiguration", "s3:PutBucketPolicy", "s3:ListBucket"):
        assert not allowed(statements, s3_request(action, bucket, owner=owner))


@pytest.mark.parametrize(("parameters", "bucket", "root", "owner"), REACH_CASES)
def test_the_operator_role_keeps_its_tables_schema_and_checkpoint_and_nothing_else(
    parameters: dict[str, str], bucket: str, root: str, owner: str
) -> None:
    # GIVEN the template with an operator principal (full-backup and run)
    resources = resolve(**parameters, OperatorPrincipalArn=OPERATOR)
    statements = policy_of(resources, "OperatorRole")
    trust = resources["OperatorRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    keys = keys_for(root)
    # WHEN each object key is tried
    writable = {
        n for n, key in keys.items() if allowed(statements, s3_request("s3:PutObject", bucket, key, owner=owner))
    }
    deletable = {
        n for n, key in keys.items() if allowed(statements, s3_request("s3:DeleteObject", bucket, key, owner=owner))
    }
    # THEN it writes the table's items, its schema and its checkpoint; deletes only items; other tables never
    assert writable == own_items(parameters) | {"schema", "checkpoint"}
    assert deletable == own_items(parameters)
    assert all(
        not allowed(statements, s3_request("s3:DeleteObjectVersion", bucket, key, owner=owner)) for key in keys.values()
    )
    # AND it lists only the table's folder, and reads the table and its streams only
    list_in = {p: allowed(statements, s3_request("s3:ListBucketVersions", bucket, owner=owner, **{"s3:prefix": p}))
               for p in (f"{root}orders/0cc1", f"{root}customers/", root, f"{root}~ddb-backup/")}  # fmt: skip
    assert list_in == {
        f"{root}orders/0cc1": True,
        f"{root}customers/": False,
        root: False,
        f"{root}~ddb-backup/": False,
    }
    for listed, expected in list_in.items():  # ListObjectsV2 alike
        request = s3_request("s3:ListBucket", bucket, owner=owner, **{"s3:prefix": listed})
        assert allowed(statements, request) == expected, listed
    assert allowed(statements, s3_request("s3:ListBucket", bucket, owner=owner)), "HeadBucket names no prefix"
    assert allowed(statements, Request("dynamodb:Scan", TABLE_ARN))
    assert allowed(statements, Request("dynamodb:GetRecords", f"{TABLE_ARN}/stream/2026-12-01T00:00:00.000"))
    assert not allowed(statements, Request("dynamodb:Scan", TABLE_ARN.replace("orders", "customers")))
    assert not allowed(statements, Request("dynamodb:PutItem", TABLE_ARN))
    assert trust == [{"Effect": "Allow", "Principal": {"AWS": OPERATOR}, "Action": "sts:AssumeRole"}]
    # AND without an operator principal there is no such role
    assert "OperatorRole" not in resolve(**parameters)


# Stack B's objects when its BackupPrefix is stack A's table folder (A: BackupPrefix=prod, table orders;
# B: BackupPrefix=prod/orders, table items). Both prefixes pass the template's pattern.
NESTED_STACK_KEYS = {
    "B's item": "prod/orders/items/0cc175b9c0f1b6a831c399e269772661",
    "B's tenant item": "prod/orders/items/acme/0cc175b9c0f1b6a831c399e269772661",
    "B's plain-text item": "prod/orders/items/a%2Fb | 1",
    "B's schema": "prod/orders/~ddb-backup/tables/items/schema.json",
    "B's checkpoint": "prod/orders/~ddb-backup/checkpoints/items.json",
}
OBJECT_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:GetObject", "s3:GetObjectVersion")


@pytest.mark.parametrize("role", ["BackupFunctionRole", "OperatorRole"])
@pytest.mark.parametrize("tenants", ["", "tenant"], ids=["no-tenants", "tenants"])
def test_a_stack_cannot_reach_a_stack_whose_prefix_is_nested_in_its_tables_folder(role: str, tenants: str) -> None:
    # GIVEN stack A (prefix prod, table orders), with or without a tenant column
    parameters = {"BackupPrefix": "prod", "MultiTenancyColumn": tenants, "OperatorPrincipalArn": OPERATOR}
    statements = policy_of(resolve(**parameters), role)
    # WHEN its role tries every object action on stack B's objects (prefix prod/orders, table items)
    reach = {
        name
        for name, key in NESTED_STACK_KEYS.items()
        if any(allowed(statements, s3_request(action, "<BackupBucket>", key)) for action in OBJECT_ACTIONS)
    }
    # THEN B's schema, checkpoint and tenant items are out of reach; without tenants, all of B's objects are.
    # With tenants B's tenant-less items look like A's tenant 'items' (docs/deploy.md: the limit)
    assert reach == ({"B's item", "B's plain-text item"} if tenants else set())
    # AND A's own items stay writable
    for name in own_items(parameters):
        assert allowed(statements, s3_request("s3:PutObject", "<BackupBucket>", keys_for("prod/")[name])), name


def test_a_prefix_or_table_name_cannot_widen_the_grants() -> None:
    # GIVEN the template's patterns for the prefix and the stream ARN
    parameters = cfn_yaml.load(str(TEMPLATE))["Parameters"]
    prefix, stream = parameters["BackupPrefix"]["AllowedPattern"], parameters["SourceStreamArn"]["AllowedPattern"]
    # THEN a wildcard in the prefix, or a table name that object keys escape, is refused
    assert re.fullmatch(prefix, "backups/prod") and not re.fullmatch(prefix, "backups/*")
    assert not re.fullmatch(prefix, "a?b")
    assert re.fullmatch(stream, STREAM_ARN)
    assert re.fullmatch(stream, STREAM_ARN.replace("/orders/", "/my.table-1/"))
    assert not re.fullmatch(stream, STREAM_ARN.replace("/orders/", "/.../"))


# ------------------------------------------------------------------ 15.2 tamper resistance

ERASE_OR_UNPROTECT = [
    "s3:DeleteObjectVersion",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketObjectLockConfiguration",
    "s3:DeleteBucket",
    # Quietly spoil new versions: another (e.g. foreign, later disabled) KMS key; objects owned by the
    # writer's account, unreadable to the bucket owner; ACLs and public access; copies sent elsewhere.
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketAcl",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutReplicationConfiguration",
]

# The CloudTrail management events of each denied bucket action (IAM action -> S3 API calls it authorises).
# Object-level actions (DeleteObjectVersion, BypassGovernanceRetention) are data events, not in the rule.
PROTECTION_EVENTS = {
    "s3:PutBucketVersioning": {"PutBucketVersioning"},
    "s3:PutLifecycleConfiguration": {"PutBucketLifecycle", "PutBucketLifecycleConfiguration", "DeleteBucketLifecycle"},
    "s3:PutBucketPolicy": {"PutBucketPolicy"},
    "s3:DeleteBucketPolicy": {"DeleteBucketPolicy"},
    "s3:PutBucketObjectLockConfiguration": {"PutObjectLockConfiguration"},
    "s3:DeleteBucket": {"DeleteBucket"},
    "s3:PutEncryptionConfiguration": {"PutBucketEncryption", "DeleteBucketEncryption"},
    "s3:PutBucketOwnershipControls": {"PutBucketOwnershipControls", "DeleteBucketOwnershipControls"},
    "s3:PutBucketAcl": {"PutBucketAcl"},
    "s3:PutBucketPublicAccessBlock": {"PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock"},
    "s3:PutReplicationConfiguration": {"PutBucketReplication", "DeleteBucketReplication"},
}


@pytest.mark.parametrize("which", ["template", "backup-account"])
def test_every_denied_bucket_change_is_alarmed_and_denied_in_both_templates(which: str) -> None:
    # GIVEN a template's bucket policy and its alarm rule
    resources = resolve() if which == "template" else resolve_backup_account()
    policy = resources["BackupBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    deny = next(s for s in policy if s["Sid"] == "OnlyTheAdminMayEraseHistoryOrChangeItsProtection")
    names = set(resources["BucketProtectionChangedRule"]["Properties"]["EventPattern"]["detail"]["eventName"])
    # THEN the admin-only deny names exactly the erasing and spoiling actions
    assert set(deny["Action"]) == set(ERASE_OR_UNPROTECT)
    # AND each bucket-level one's CloudTrail events reach the alarm, and nothing else does
    assert set(PROTECTION_EVENTS) <= set(ERASE_OR_UNPROTECT)
    assert names == set().union(*PROTECTION_EVENTS.values())


@pytest.mark.parametrize(
    ("parameters", "admin"),
    [
        ({"AdminRoleArn": f"arn:aws:iam::{ACCOUNT}:role/backup-admin"}, f"arn:aws:iam::{ACCOUNT}:role/backup-admin"),
        ({}, f"arn:aws:iam::{ACCOUNT}:root"),
    ],
)
def test_only_the_admin_may_erase_history_or_change_the_buckets_protection(
    parameters: dict[str, str], admin: str
) -> None:
    # GIVEN the created bucket's policy
    policy = resolve(**parameters)["BackupBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    others = [FUNCTION_ROLE_ARN, f"arn:aws:iam::{ACCOUNT}:role/Administrator", f"arn:aws:iam::{OTHER_ACCOUNT}:root"]
    for action in ERASE_OR_UNPROTECT:
        for resource in ("arn:aws:s3:::<BackupBucket>", "arn:aws:s3:::<BackupBucket>/orders/0cc1"):
            context = {"aws:PrincipalArn": admin, "aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
            # THEN the admin is not denied, over TLS
            assert not denied(
                policy, Request(action, resource.replace("<BackupBucket>", "<BackupBucket.Arn>"), context)
            )
            # AND everyone else is, whatever their own policies allow
            for principal in others:
                request = Request(action, "<BackupBucket.Arn>" + resource[len("arn:aws:s3:::<BackupBucket>") :],
                                  {**context, "aws:PrincipalArn": principal})  # fmt: skip
                assert denied(policy, request), (action, principal)
    # AND everyday writes are not denied by it
    write = Request("s3:PutObject", "<BackupBucket.Arn>/orders/0cc1", {"aws:PrincipalArn": FUNCTION_ROLE_ARN,
                    "aws:SecureTransport": "true", "s3:TlsVersion": "1.3"})  # fmt: skip
    assert not denied(policy, write)


def test_changes_of_the_buckets_protection_reach_the_alarm_topic() -> None:
    # GIVEN the template (new bucket, and an existing one)
    for parameters, bucket in (({}, "<BackupBucket>"), ({"ExistingBucketName": "acme-backups"}, "acme-backups")):
        resources = resolve(**parameters)
        rule = resources["BucketProtectionChangedRule"]["Properties"]
        # THEN CloudTrail records of versioning, lifecycle, policy and Object Lock changes of that bucket match
        pattern = rule["EventPattern"]
        assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["AWS API Call via CloudTrail"]
        assert pattern["detail"]["requestParameters"] == {"bucketName": [bucket]}
        names = set(pattern["detail"]["eventName"])
        assert {"PutBucketVersioning", "PutBucketLifecycle", "DeleteBucketLifecycle", "PutBucketPolicy"} <= names
        assert {"DeleteBucketPolicy", "PutObjectLockConfiguration"} <= names
        # AND they go to the alarm topic, which lets this rule (only) publish
        assert rule["Targets"] == [{"Id": "alarm-topic", "Arn": "<AlarmTopic>"}]
        topic_policy = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        publish = Request("sns:Publish", "<AlarmTopic>", {"aws:SourceArn": "<BucketProtectionChangedRule.Arn>",
                                                         "aws:SecureTransport": "true"})  # fmt: skip
        events = [s for s in topic_policy if s.get("Principal") == {"Service": "events.amazonaws.com"}]
        assert allowed(events, publish)
        assert not allowed(events, Request("sns:Publish", "<AlarmTopic>", {"aws:SourceArn": "arn:aws:events:x"}))


def test_the_alarm_topic_is_encrypted_with_a_key_alarms_and_events_may_use() -> None:
    # GIVEN the template without and with a KMS key
    plain, with_key = resolve(), resolve(KmsKeyArn=KEY_ARN)
    # THEN without one the topic has a key of its own (alias/aws/sns would shut CloudWatch and EventBridge out)
    assert plain["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == "<AlarmTopicKey>"
    key = plain["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
        users = [s for s in key["KeyPolicy"]["Statement"] if service in as_list(s["Principal"].get("Service", []))]
        assert allowed(users, Request("kms:GenerateDataKey", "*")) and allowed(users, Request("kms:Decrypt", "*"))
        assert not allowed(users, Request("kms:ScheduleKeyDeletion", "*"))
    # AND with one, the topic uses it and the stack makes no key
    assert with_key["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == KEY_ARN
    assert "AlarmTopicKey" not in with_key


# ------------------------------------------------------------------ 15.3 a backup account

VAULT = "vault-bucket"  # the backup account stack's bucket, by name


def vault_policy(**parameters: Any) -> list[dict[str, Any]]:
    """The backup account bucket's policy, its own ARN written as the bucket's."""
    policy = resolve_backup_account(**parameters)["BackupBucketPolicy"]["Properties"]["PolicyDocument"]
    return list(json.loads(json.dumps(policy["Statement"]).replace("<BackupBucket.Arn>", f"arn:aws:s3:::{VAULT}")))


def cross_account(identity: list[dict[str, Any]], bucket_policy: list[dict[str, Any]], request: Request) -> bool:
    """AWS's rule for a request into another account: both the caller's policy and the bucket's allow it,
    and neither denies it."""
    return allowed(identity, request) and allowed(bucket_policy, request)


def test_the_backup_account_bucket_is_locked_encrypted_with_its_own_key_and_owns_every_object() -> None:
    # GIVEN the backup account stack, by default and in compliance mode for 90 days
    default = resolve_backup_account()["BackupBucket"]
    strict = resolve_backup_account(ObjectLockMode="COMPLIANCE", RetentionDays=90)["BackupBucket"]["Properties"]
    properties = default["Properties"]
    # THEN versioning and Object Lock are on, governance mode by default, for RetentionDays
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["ObjectLockEnabled"] is True
    assert properties["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 35}
    assert strict["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 90}
    assert strict["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}
    # AND encrypted with this account's key, ACLs off (the bucket owner owns what the source writes), private
    encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": "<BackupKey.Arn>",
    }
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert default["DeletionPolicy"] == "Retain"


def test_a_source_function_reaches_only_its_tables_folder_in_the_backup_account() -> None:
    # GIVEN the source stack pointed at the backup account's bucket, and that bucket's policy
    source = resolve(ExistingBucketName=VAULT, ExpectedBucketOwner=BACKUP_ACCOUNT, BucketKmsKeyArn=KEY_ARN)
    function = policy_of(source, "BackupFunctionRole")
    bucket_policy = vault_policy()
    role = f"arn:aws:iam::{ACCOUNT}:role/ddb-backup/{STACK}-BackupFunctionRole-AB12"
    assert source["BackupFunctionRole"]["Properties"]["Path"] == "/ddb-backup/"
    context = {"aws:PrincipalArn": role, "aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}

    def request(action: str, key: str | None, principal: str = role) -> Request:
        base = s3_request(action, VAULT, key, owner=BACKUP_ACCOUNT)
        return Request(base.action, base.resource, {**base.context, **context, "aws:PrincipalArn": principal})

    # THEN it adds versions and delete markers to its table's items only
    keys = keys_for("")
    reach = {n for n, key in keys.items() if cross_account(function, bucket_policy, request("s3:PutObject", key))}
    assert reach == own_items({})
    assert cross_account(function, bucket_policy, request("s3:DeleteObject", keys["item"]))
    assert cross_account(function, bucket_policy, request("s3:GetBucketVersioning", None))
    # AND no source principal, whatever its own policy, removes history or changes the bucket
    anything = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]
    for action in ERASE_OR_UNPROTECT:
        for key in (None, keys["item"]):
            assert not cross_account(anything, bucket_policy, request(action, key)), action
    # AND a source role outside /ddb-backup/ gets nothing, even with s3:* of its own
    admin = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
    assert not cross_account(anything, bucket_policy, request("s3:PutObject", keys["item"], admin))
    assert not cross_account(anything, bucket_policy, request("s3:GetObject", keys["item"], admin))
    # AND the function names the owner on every request and may use the backup account's key
    variables = source["BackupFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["ExpectedBucketOwner"] == BACKUP_ACCOUNT
    assert allowed(function, Request("kms:GenerateDataKey", KEY_ARN))


@pytest.mark.parametrize("prefix", ["", "ddb"])
def test_only_the_named_operator_roles_of_the_source_write_schemas_and_checkpoints(prefix: str) -> None:
    # GIVEN the backup account's bucket policy naming one operator role of the source account
    operator = f"arn:aws:iam::{ACCOUNT}:role/ddb-backup/{STACK}-OperatorRole-CD34"
    function = f"arn:aws:iam::{ACCOUNT}:role/ddb-backup/{STACK}-BackupFunctionRole-AB12"
    other_operator = f"arn:aws:iam::{ACCOUNT}:role/ddb-backup/customers-backup-OperatorRole-EF56"
    root = f"{prefix}/" if prefix else ""
    named, unnamed = vault_policy(BackupPrefix=prefix, OperatorRoleArns=operator), vault_policy(BackupPrefix=prefix)
    anything = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]  # whatever the role's own policy says
    files = [f"{root}~ddb-backup/tables/orders/schema.json", f"{root}~ddb-backup/checkpoints/orders.json",
             f"{root}prod/~ddb-backup/tables/items/schema.json"]  # fmt: skip

    def may(policy: list[dict[str, Any]], principal: str, action: str, key: str) -> bool:
        context = {"aws:PrincipalArn": principal, "aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
        return cross_account(anything, policy, Request(action, f"arn:aws:s3:::{VAULT}/{key}", context))

    for action in ("s3:PutObject", "s3:DeleteObject"):
        for key in files:
            # THEN the named operator role writes them, no other source role under /ddb-backup/ does
            assert may(named, operator, action, key), (action, key)
            assert not may(named, function, action, key), (action, key)
            assert not may(named, other_operator, action, key), (action, key)
            # AND with no operator role named, no source role does
            assert not may(unnamed, operator, action, key), (action, key)
        # AND the items stay writable for every source ddb-backup role
        assert may(named, function, action, f"{root}orders/0cc175b9c0f1b6a831c399e269772661")
    # AND every source role still reads them (restore and run read the schema and the checkpoint)
    assert may(named, function, "s3:GetObject", files[0])
    # AND the backup account's own principals are not concerned by this deny
    own = {"aws:PrincipalArn": f"arn:aws:iam::{BACKUP_ACCOUNT}:role/restorer", "aws:SecureTransport": "true",
           "s3:TlsVersion": "1.3"}  # fmt: skip
    assert not denied(named, Request("s3:PutObject", f"arn:aws:s3:::{VAULT}/{files[0]}", own))


def test_the_backup_accounts_key_serves_the_source_roles_through_s3_only() -> None:
    # GIVEN the backup account's key policy
    key = resolve_backup_account()["BackupKey"]["Properties"]["KeyPolicy"]["Statement"]
    role = f"arn:aws:iam::{ACCOUNT}:role/ddb-backup/{STACK}-BackupFunctionRole-AB12"
    via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com", "aws:PrincipalArn": role}
    source = [s for s in key if s["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}]
    # THEN a source backup role encrypts and decrypts through S3, not directly, and other roles not at all
    assert allowed(source, Request("kms:GenerateDataKey", "*", via_s3))
    assert not allowed(source, Request("kms:GenerateDataKey", "*", {**via_s3, "kms:ViaService": "sqs.x"}))
    assert not allowed(source, Request("kms:Decrypt", "*", {"aws:PrincipalArn": role}))
    other = {**via_s3, "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/Administrator"}
    assert not allowed(source, Request("kms:Decrypt", "*", other))
    assert not allowed(source, Request("kms:ScheduleKeyDeletion", "*", via_s3))


def test_the_backup_account_alarms_on_changes_of_its_buckets_protection() -> None:
    # GIVEN the backup account stack with an alarm e-mail
    resources = resolve_backup_account(AlarmEmail="vault@example.com")
    rule = resources["BucketProtectionChangedRule"]["Properties"]
    # THEN bucket configuration changes go to the topic, which e-mails them
    assert rule["EventPattern"]["detail"]["requestParameters"] == {"bucketName": ["<BackupBucket>"]}
    assert {"PutBucketPolicy", "PutBucketVersioning", "PutObjectLockConfiguration"} <= set(
        rule["EventPattern"]["detail"]["eventName"]
    )
    assert rule["Targets"] == [{"Id": "alarm-topic", "Arn": "<AlarmTopic>"}]
    assert resources["AlarmSubscription"]["Properties"]["Endpoint"] == "vault@example.com"
    # AND only the admin may erase history, by default the backup account's root user
    policy = vault_policy()
    tls = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
    root = {**tls, "aws:PrincipalArn": f"arn:aws:iam::{BACKUP_ACCOUNT}:root"}
    someone = {**tls, "aws:PrincipalArn": f"arn:aws:iam::{BACKUP_ACCOUNT}:role/Administrator"}
    assert not denied(policy, Request("s3:PutBucketVersioning", f"arn:aws:s3:::{VAULT}", root))
    assert denied(policy, Request("s3:PutBucketVersioning", f"arn:aws:s3:::{VAULT}", someone))
