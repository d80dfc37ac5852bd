"""``ddb-backup full-backup`` end to end through moto's HTTP server."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from click.testing import CliRunner

from ddb_backup import handler as h
from ddb_backup.aws.clients import make_client
from ddb_backup.cli import cli
from ddb_backup.format import version_meta as vm
from ddb_backup.format.table_schema import load_schema
from ddb_backup.lab.demo import create_bucket, create_table, read_stream
from ddb_backup.store.s3 import S3Store

pytestmark = pytest.mark.e2e


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_full_backup_writes_every_item_under_the_stream_writers_names(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a table of 40 items whose stream changes the function backed up a minute ago (plain-text names)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    ddb, s3, streams = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
    stream_arn = create_table(ddb, "shop")
    create_bucket(s3, "bk-e2e-full")
    for n in range(40):
        ddb.put_item(TableName="shop", Item={"pk": {"S": f"c/{n % 7}"}, "sk": {"N": str(n)}, "v": {"N": "1"}})
    records = read_stream(streams, stream_arn, os.environ["AWS_DEFAULT_REGION"])
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] -= 60
    for name, value in {"BackupBucket": "bk-e2e-full", "BackupPrefix": "pre", "PlainTextKeyAsFilename": "true"}.items():
        monkeypatch.setenv(name, value)
    h.reset_runtime()
    try:
        assert h.handler({"Records": records}, None) == {"batchItemFailures": []}
    finally:
        h.reset_runtime()
    # WHEN a full backup runs with the function's settings, in 3 segments of small pages
    result = run_cli(
        "full-backup", "--bucket", "bk-e2e-full", "--prefix", "pre", "--table", "shop", "--plain-text",
        "--segments", "3", "--page-size", "5", "--read-rate", "1000",
    )  # fmt: skip
    # THEN every item has one object holding its INSERT and, newest, its FULL_BACKUP image
    assert result.exit_code == 0, result.output
    assert "40 items read, 40 written, 0 left to newer stream changes, 0 failed" in result.output
    store = S3Store(s3, "bk-e2e-full")
    rows = [row for row in store.list_versions("pre/shop/")]
    assert len({row.key for row in rows}) == 40
    assert len(rows) == 80
    newest = [row for row in rows if row.is_latest]
    metas = [vm.VersionMeta.from_s3(store.head(row.key, row.version_id).metadata) for row in newest]
    assert {(m.event_name, m.writer, m.sequence_number) for m in metas if m} == {("FULL_BACKUP", "full-backup", None)}
    assert json.loads(store.get("pre/shop/c%2F3 | 10").body) == {"pk": {"S": "c/3"}, "sk": {"N": "10"}, "v": {"N": "1"}}
    # AND the table's schema is saved for restore
    schema = load_schema(store, "pre", "shop")
    assert schema is not None
    assert schema["KeySchema"] == ddb.describe_table(TableName="shop")["Table"]["KeySchema"]
    assert "~ddb-backup/tables/shop/schema.json" in result.output


def test_full_backup_user_errors_are_one_line_with_exit_code_2(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    s3 = make_client("s3")
    create_bucket(s3, "bk-e2e-errors")
    s3.create_bucket(Bucket="plain-bucket")
    ddb = make_client("dynamodb")
    create_table(ddb, "shop-errors")
    missing = run_cli("full-backup", "--bucket", "bk-e2e-errors", "--table", "nope")
    unversioned = run_cli("full-backup", "--bucket", "plain-bucket", "--table", "shop-errors")
    for result, words in ((missing, "does not exist"), (unversioned, "versioning")):
        assert result.exit_code == 2, result.output
        assert words in result.output
        assert len(result.output.strip().splitlines()) == 1
