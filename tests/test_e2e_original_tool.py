"""The original tool's buckets end to end: the CLI against moto's server (issue 13 failures 1-3)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builders import put, remove
from ddb_backup.aws.clients import make_client
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.cli import cli
from ddb_backup.format import keys as k
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.lab.emulator import reset
from ddb_backup.store.s3 import S3Store
from original_tool import OriginalTool

pytestmark = pytest.mark.e2e

BUCKET = "bk-original"
SCHEMA = k.KeySchema("userId", "createdAt")


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    reset(moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.chdir(tmp_path)  # checkpoints land here
    s3 = make_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ddb = make_client("dynamodb")
    ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "createdAt", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "userId", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return S3Store(s3, BUCKET), ddb


def key(user: str) -> dict[str, Any]:
    return {"userId": {"S": user}, "createdAt": {"N": "1"}}


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--bucket", BUCKET, "--table", "orders"], catch_exceptions=False)


def users(ddb: Any, table: str) -> list[str]:
    return sorted(item["userId"]["S"] for item in ddb.scan(TableName=table)["Items"])


def test_no_prefix_bucket_then_upgrade_in_place_through_the_cli(moto: Any) -> None:
    store, ddb = moto
    # GIVEN the original tool with no BackupPrefix (keys "/orders/<md5>"): u1, u2, u3
    start = time.time() - 60
    OriginalTool(store).process([put(key(u), {"v": {"N": "1"}}, at=start) for u in ("u1", "u2", "u3")])
    assert all(o["Key"].startswith("/orders/") for o in make_client("s3").list_objects_v2(Bucket=BUCKET)["Contents"])
    time.sleep(1.1)
    before_upgrade = epoch_to_iso(time.time())
    time.sleep(1.1)
    # AND ddb-backup continuing in the same bucket, no prefix: u1 modified, u2 removed
    capture = Capture(store, CaptureSettings(workers=1), lambda table: SCHEMA)
    now = time.time()
    records = [put(key("u1"), {"v": {"N": "2"}}, first=False, at=now), remove(key("u2"), {"v": {"N": "1"}}, at=now)]
    assert not capture.process(records).failures
    time.sleep(1.1)
    after = epoch_to_iso(time.time())
    # WHEN restored with --prefix "" and with --prefix /, before and after the upgrade
    first = run("restore", "--prefix", "", "--at", before_upgrade, "--to-table", "before")
    second = run("restore", "--prefix", "/", "--at", after, "--to-table", "after")
    # THEN one history per item: the original's items before, ours after (u2 removed stays removed)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert users(ddb, "before") == ["u1", "u2", "u3"]
    assert users(ddb, "after") == ["u1", "u3"]
    u1 = next(i for i in ddb.scan(TableName="after")["Items"] if i["userId"]["S"] == "u1")
    assert u1["v"] == {"N": "2"}
    # AND history shows the item's names merged, diff sees the change, tables the one table
    history = run("history", "--key", json.dumps(key("u2")), "--json")
    assert history.exit_code == 0, history.output
    assert [v["event"] for v in json.loads(history.output)["versions"]] == ["insert", "remove"]
    diff = run("diff", "--from", before_upgrade, "--to", after, "--json")
    assert diff.exit_code == 0, diff.output
    kinds = {c["key"]["userId"]["S"]: c["kind"] for c in json.loads(diff.output)["changes"]}
    assert kinds == {"u1": "changed", "u2": "removed"}
    tables = CliRunner().invoke(cli, ["tables", "--bucket", BUCKET, "--json"], catch_exceptions=False)
    assert [t["table"] for t in json.loads(tables.output)["tables"]] == ["orders"]
