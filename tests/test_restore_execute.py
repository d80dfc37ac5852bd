"""The restore executor on the in-memory store and a fake table: options, targets, sync, segments, keys."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builders import put, remove
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.cli import cli
from ddb_backup.errors import UserError
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import create_table_args
from ddb_backup.restore.checkpoint import Checkpoint
from ddb_backup.restore.execute import LEGACY_WARNING, RestoreOptions, restore
from ddb_backup.restore.plan import MD5
from ddb_backup.store.memory import MemoryStore
from fake_dynamodb import FakeDynamoDB

T0 = 1_764_000_000.0
KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}]


def key(n: int) -> dict[str, Any]:
    return {"pk": {"S": f"p{n}"}, "sk": {"N": str(n)}}


def backup(*, plain_text: bool = False, tenant: str | None = None) -> MemoryStore:
    """Items 0..9 put at T0 (written at T0), items 0..2 removed at T0 + 100 (written then)."""
    clock = {"now": T0}
    store = MemoryStore(clock=lambda: datetime.fromtimestamp(clock["now"], tz=UTC))
    settings = CaptureSettings(plain_text=plain_text, tenant_column="tenant" if tenant else None, workers=2)
    capture = Capture(store, settings, lambda table: k.KeySchema("pk", "sk"))
    attrs = {"tenant": {"S": tenant}} if tenant else {}
    assert not capture.process([put(key(n), {"v": {"N": str(n)}, **attrs}, at=T0) for n in range(10)]).failures
    clock["now"] = T0 + 100
    assert not capture.process([remove(key(n), attrs, at=T0 + 100) for n in range(3)]).failures
    return store


def fake_with_source() -> FakeDynamoDB:
    dynamodb = FakeDynamoDB()
    dynamodb.create_table(
        TableName="orders", KeySchema=KEY_SCHEMA, AttributeDefinitions=ATTRIBUTES, BillingMode="PAY_PER_REQUEST"
    )
    return dynamodb


def options(tmp_path: Path, **changes: Any) -> RestoreOptions:
    base = RestoreOptions(
        bucket="bk", source="orders", target="copy", at=T0 + 50, checkpoint=tmp_path / "cp.json", workers=4
    )
    return replace(base, **changes)


def run(store: MemoryStore, dynamodb: Any, opts: RestoreOptions, **kw: Any) -> Any:
    return restore(opts, store, dynamodb, now=lambda: T0 + 1000, **kw)


def pks(dynamodb: FakeDynamoDB, table: str = "copy") -> list[str]:
    return sorted(json.loads(identity)["pk"]["S"] for identity in dynamodb.dump(table))


def test_restore_creates_the_target_and_writes_the_state_at_t(tmp_path: Path) -> None:
    store, dynamodb = backup(), fake_with_source()
    summary = run(store, dynamodb, options(tmp_path))
    assert pks(dynamodb) == [f"p{n}" for n in range(10)]
    assert (summary.puts, summary.skipped, summary.items, summary.target_created) == (10, 0, 10, True)
    later = run(store, dynamodb, options(tmp_path, target="later", at=T0 + 200))
    assert pks(dynamodb, "later") == [f"p{n}" for n in range(3, 10)]
    assert (later.puts, later.skipped) == (7, 3)


def test_a_non_empty_target_is_refused_without_overwrite(tmp_path: Path) -> None:
    store, dynamodb = backup(), fake_with_source()
    run(store, dynamodb, options(tmp_path))
    with pytest.raises(UserError, match=r"not empty.*--overwrite"):
        run(store, dynamodb, options(tmp_path))
    assert not (tmp_path / "cp.json").exists()  # a refusal leaves no checkpoint behind
    assert run(store, dynamodb, options(tmp_path, overwrite=True)).puts == 10


def test_sync_deletes_target_items_absent_at_t_and_a_dry_run_counts_them(tmp_path: Path) -> None:
    # GIVEN a target holding the state at T0 + 50 plus an item the backup never saw
    store, dynamodb = backup(), fake_with_source()
    run(store, dynamodb, options(tmp_path))
    dynamodb.put_item(TableName="copy", Item={"pk": {"S": "stranger"}, "sk": {"N": "1"}})
    # WHEN a dry run, then a sync, to T0 + 200 (items 0..2 removed by then)
    synced = options(tmp_path, at=T0 + 200, overwrite=True, sync=True)
    plan = run(store, dynamodb, replace(synced, dry_run=True))
    summary = run(store, dynamodb, synced)
    # THEN the removed items and the stranger are gone, and the dry run said so without writing
    assert (plan.puts, plan.deletes, plan.dry_run) == (7, 4, True)
    assert (summary.puts, summary.deletes) == (7, 4)
    assert pks(dynamodb) == [f"p{n}" for n in range(3, 10)]


def test_sync_needs_overwrite_and_refuses_a_tenant_or_a_segment(tmp_path: Path) -> None:
    store, dynamodb = backup(), fake_with_source()
    for bad in (
        {"sync": True},
        {"sync": True, "overwrite": True, "tenant": "acme"},
        {"sync": True, "overwrite": True, "total_segments": 2},
    ):
        with pytest.raises(UserError):
            run(store, dynamodb, options(tmp_path, **bad))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"at": T0 + 5000}, "in the future"),
        ({"target": "orders"}, "--allow-same-table"),
        ({"segment": 2, "total_segments": 2}, "--segment 2"),
        ({"write_rate": 0.0}, "--write-rate"),
    ],
)
def test_options_are_checked_before_anything_is_touched(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    dynamodb = fake_with_source()
    with pytest.raises(UserError, match=message):
        run(backup(), dynamodb, options(tmp_path, **changes))
    assert "copy" not in dynamodb.tables


def test_segments_together_restore_the_whole_table(tmp_path: Path) -> None:
    store, dynamodb = backup(), fake_with_source()
    total = 3
    for segment in range(total):
        run(store, dynamodb, options(tmp_path, segment=segment, total_segments=total, overwrite=segment > 0))
    assert pks(dynamodb) == [f"p{n}" for n in range(10)]


@pytest.mark.parametrize("plain_text", [False, True])
def test_key_restores_just_that_item_under_either_naming(tmp_path: Path, plain_text: bool) -> None:
    store, dynamodb = backup(plain_text=plain_text), fake_with_source()
    wanted = (k.key_json(key(4)), k.key_json({"pk": {"S": "p1"}, "sk": {"N": "1.0"}}))
    summary = run(store, dynamodb, options(tmp_path, keys=wanted))
    assert pks(dynamodb) == ["p1", "p4"] and summary.items == 2


def test_a_tenant_restores_only_that_tenants_items(tmp_path: Path) -> None:
    store, dynamodb = backup(tenant="acme"), fake_with_source()
    assert run(store, dynamodb, options(tmp_path, tenant="other")).items == 0
    assert run(store, dynamodb, options(tmp_path, tenant="acme", target="acme")).puts == 10


def test_resume_refuses_a_checkpoint_of_another_restore_and_a_fresh_run_refuses_a_leftover(tmp_path: Path) -> None:
    store, dynamodb = backup(), fake_with_source()
    Checkpoint.start(tmp_path / "cp.json", options(tmp_path, at=T0 + 1).query(), MD5)
    with pytest.raises(UserError, match="another restore: at"):
        run(store, dynamodb, options(tmp_path, resume=True))
    with pytest.raises(UserError, match="--resume"):
        run(store, dynamodb, options(tmp_path))
    # a relative TIME (-15m) moved on since the first run: the checkpoint's absolute time is kept
    resumed = run(store, dynamodb, options(tmp_path, resume=True, at_relative=True, at=T0 + 500))
    assert resumed.puts == 10 and not (tmp_path / "cp.json").exists()


def test_versions_of_the_original_tool_restore_by_last_modified_with_a_warning(tmp_path: Path) -> None:
    clock = {"now": T0}
    store = MemoryStore(clock=lambda: datetime.fromtimestamp(clock["now"], tz=UTC))
    name = k.object_key_for("", "orders", k.md5_object_name(key(1)))
    store.put(name, json.dumps({**key(1), "v": {"S": "old"}}).encode(), {})
    clock["now"] = T0 + 100
    store.delete(name)
    dynamodb = fake_with_source()
    summary = run(store, dynamodb, options(tmp_path, at=T0 + 50))
    assert pks(dynamodb) == ["p1"] and LEGACY_WARNING in summary.warnings
    assert run(store, dynamodb, options(tmp_path, target="later", at=T0 + 150)).puts == 0


def test_a_time_before_the_first_backup_warns_with_the_earliest_time(tmp_path: Path) -> None:
    summary = run(backup(), fake_with_source(), options(tmp_path, at=T0 - 3600))
    assert summary.puts == 0
    assert any("earliest backup version was written at 2025-11-24T16:00:00Z" in w for w in summary.warnings)


def test_the_target_is_created_from_a_saved_schema_with_its_indexes_and_billing(tmp_path: Path) -> None:
    saved = {
        "format": 1,
        "TableName": "orders",
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": [*ATTRIBUTES, {"AttributeName": "g", "AttributeType": "S"}],
        "BillingModeSummary": {"BillingMode": "PROVISIONED"},
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 3},
            }
        ],
        "TimeToLiveDescription": {"AttributeName": "ttl", "TimeToLiveStatus": "ENABLED"},
    }
    store = backup()
    store.put("~ddb-backup/tables/orders/schema.json", json.dumps(saved).encode(), {"format": "1"})
    dynamodb = FakeDynamoDB()  # the source table is gone: the saved schema is all there is
    run(store, dynamodb, options(tmp_path))
    created = dynamodb.tables["copy"]
    assert created["BillingMode"] == "PROVISIONED"
    assert created["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 7}
    assert created["GlobalSecondaryIndexes"][0]["IndexName"] == "by-g"
    assert pks(dynamodb) == [f"p{n}" for n in range(10)]
    assert create_table_args({**saved, "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}}, "x") == {
        "TableName": "x",
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": saved["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by-g",
                "KeySchema": saved["GlobalSecondaryIndexes"][0]["KeySchema"],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def test_without_a_schema_or_a_target_the_error_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="create the target table yourself"):
        run(backup(), FakeDynamoDB(), options(tmp_path))


def test_a_dry_run_lists_the_versions_it_would_read_and_writes_nothing(tmp_path: Path) -> None:
    store, dynamodb = backup(), fake_with_source()
    seen: list[str] = []
    summary = run(store, dynamodb, options(tmp_path, dry_run=True), on_plan=lambda state: seen.append(state.object_key))
    assert len(seen) == summary.puts == 10 and "copy" not in dynamodb.tables
    assert summary.target_created and not (tmp_path / "cp.json").exists()


def test_the_command_has_an_example_and_rejects_bad_input_with_exit_2() -> None:
    runner = CliRunner()
    assert "Example:" in runner.invoke(cli, ["restore", "--help"]).output
    common = ["restore", "--bucket", "b", "--table", "src", "--to-table", "dst"]
    bad_time = runner.invoke(cli, [*common, "--at", "yesterday"])
    bad_key = runner.invoke(cli, [*common, "--at", "-1h", "--key", "{nope"])
    bad_lag = runner.invoke(cli, [*common, "--at", "-1h", "--max-lag", "soon"])
    for result, text in ((bad_time, "cannot read the time"), (bad_key, "not JSON"), (bad_lag, "duration")):
        assert result.exit_code == 2 and text in result.output and "Try:" in result.output
