"""Buckets written by the original Node.js tool, upgrades in place, rollbacks, shared buckets and stray
objects (issue 13, issue 11 items 2 and 3): every reader gives the item's one history.

Fixture buckets are written by ``original_tool.OriginalTool`` (keys, bodies, no metadata, delete
markers, as issue 13 describes the original) and by our own ``Capture``, on the in-memory store.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from builders import put, remove
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.cli.preflight import NothingMatches, check_keys, check_tenant, looks_like_prefix
from ddb_backup.errors import UserError
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import save_schema
from ddb_backup.format.version_meta import Tenancy
from ddb_backup.inspect.diff import DiffCounts, diff_table
from ddb_backup.inspect.export import DirDestination, ExportManifest, export_table, read_export
from ddb_backup.inspect.history import belongs_to_table, item_history, locate_items
from ddb_backup.inspect.tables import holds_items_directly, summarize_bucket
from ddb_backup.inspect.verify import VerifyOptions, verify_table
from ddb_backup.restore.execute import RestoreOptions, restore
from ddb_backup.restore.plan import PointInTime, table_ranges
from ddb_backup.restore.resolve import resolver_for
from ddb_backup.restore.tenancy import OUR_VERSIONS, PROBE_READS, SAVED_SCHEMA, TableTenancy
from ddb_backup.store.memory import MemoryStore
from fake_dynamodb import FakeDynamoDB
from inspect_support import Clock
from original_tool import OriginalTool

T0 = 1_764_000_000.0
SCHEMA = k.KeySchema("userId", "createdAt")  # the hash key's name sorts after the range key's
KEY_SCHEMA = [{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "createdAt", "KeyType": "RANGE"}]
ATTRIBUTES = [{"AttributeName": "userId", "AttributeType": "S"}, {"AttributeName": "createdAt", "AttributeType": "N"}]


def key(user: str, n: int = 1) -> dict[str, Any]:
    """In stream order: hash key first (the original tool hashes this order)."""
    return {"userId": {"S": user}, "createdAt": {"N": str(n)}}


def ours(store: MemoryStore, clock: Clock, records: list[dict[str, Any]], *, lag: float = 2.0, **settings: Any) -> None:
    capture = Capture(store, CaptureSettings(workers=1, **settings), lambda table: SCHEMA)
    for raw in records:
        clock.now = raw["dynamodb"]["ApproximateCreationDateTime"] + lag
        report = capture.process([raw])
        assert not report.failures, report.errors


def new_bucket() -> tuple[MemoryStore, Clock]:
    clock = Clock(T0)
    return MemoryStore(clock=clock), clock


# -- readers ------------------------------------------------------------------------------------------


def attributes(created_type: str = "N") -> list[dict[str, str]]:
    return [ATTRIBUTES[0], {"AttributeName": "createdAt", "AttributeType": created_type}]


def source_table(created_type: str = "N") -> FakeDynamoDB:
    dynamodb = FakeDynamoDB()
    dynamodb.create_table(
        TableName="orders",
        KeySchema=KEY_SCHEMA,
        AttributeDefinitions=attributes(created_type),
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def restored(
    store: MemoryStore, at: float, tmp_path: Path, created_type: str = "N", **changes: Any
) -> tuple[dict[str, Any], Any]:
    """What a restore at ``at`` writes: {userId: image}, and the summary."""
    dynamodb = source_table(created_type)
    options = RestoreOptions(
        bucket="bk", source="orders", target="copy", at=at, checkpoint=tmp_path / f"cp-{at}.json", workers=3
    )
    options = replace(options, **changes)
    summary = restore(options, store, dynamodb, now=lambda: T0 + 10_000)
    return {json.loads(i)["userId"]["S"]: image for i, image in dynamodb.dump(options.target).items()}, summary


def exported(store: MemoryStore, at: float, tmp_path: Path, prefix: str = "") -> list[dict[str, Any]]:
    root = tmp_path / f"export-{at}"
    manifest = ExportManifest("orders", at, "none", source={"bucket": "bk", "prefix": prefix})
    export_table(store, table_ranges(store, prefix, "orders"), PointInTime(at=at), DirDestination(root), manifest)
    return read_export(root)


def diffed(store: MemoryStore, start: float, end: float, prefix: str = "") -> tuple[dict[str, str], DiffCounts]:
    counts = DiffCounts()
    ranges = table_ranges(store, prefix, "orders")
    changes = diff_table(store, ranges, start, end, counts, schema=SCHEMA, prefix=prefix, table="orders")
    return {change.key["userId"]["S"]: change.kind for change in changes if change.key}, counts


def history(
    store: MemoryStore, item: dict[str, Any], prefix: str = "", tenant: str | None = None
) -> list[tuple[str, Any]]:
    located = locate_items(store, prefix, "orders", item, schema=SCHEMA, tenant=tenant)
    entries = item_history(
        store, located, belongs=belongs_to_table(resolver_for(store, prefix, "orders", SCHEMA), item)
    )
    return [(entry.event, (entry.image or {}).get("v")) for entry in entries]


def v(n: int) -> dict[str, Any]:
    return {"v": {"N": str(n)}}


# -- 1. no BackupPrefix: /orders/<md5> ----------------------------------------------------------------


def original_without_prefix() -> MemoryStore:
    store, clock = new_bucket()
    tool = OriginalTool(store, clock=clock)
    tool.process([put(key(u), v(1), at=T0) for u in ("u1", "u2", "u3")])
    tool.process([remove(key("u3"), v(1), at=T0 + 100)])
    return store


def test_1_a_bucket_written_with_no_prefix_restores_with_an_empty_prefix_or_slash(tmp_path: Path) -> None:
    # GIVEN the original tool with BackupPrefix unset: its keys start with "/"
    store = original_without_prefix()
    assert all(key.startswith("/orders/") for key in store._versions)
    # WHEN restored with --prefix "" and with --prefix /
    items, summary = restored(store, T0 + 50, tmp_path)
    later, _ = restored(store, T0 + 200, tmp_path, prefix="/", target="copy")
    # THEN every item present at T comes back, decided by LastModified (said so)
    assert sorted(items) == ["u1", "u2", "u3"] and summary.legacy
    assert sorted(later) == ["u1", "u2"]
    assert items["u1"] == {**key("u1"), **v(1)}


def test_1_every_reader_finds_the_no_prefix_bucket(tmp_path: Path) -> None:
    store = original_without_prefix()
    assert sorted(i["userId"]["S"] for i in exported(store, T0 + 200, tmp_path)) == ["u1", "u2"]
    assert diffed(store, T0 + 50, T0 + 200)[0] == {"u3": "removed"}
    assert history(store, key("u3")) == [("insert", {"N": "1"}), ("remove", None)]
    tables = {t.name: t for t in summarize_bucket(store, "")}
    assert list(tables) == ["orders"] and tables["orders"].total.items == 3 and not tables["orders"].tenants


# -- 2. plain-text names, unescaped, "/" and "%" in values --------------------------------------------


def original_plain_text() -> MemoryStore:
    store, clock = new_bucket()
    tool = OriginalTool(store, prefix="bk", plain_text=True, clock=clock)
    tool.process([put(key("a/b", 1), v(1), at=T0), put(key("50%", 2), v(2), at=T0), put(key("c", 3), v(3), at=T0)])
    tool.process([put(key("a/b", 1), v(4), first=False, at=T0 + 100)])
    return store


def test_2_plain_text_names_history_restore_key_and_tables(tmp_path: Path) -> None:
    # GIVEN plain-text names by attribute NAME order: "1 | a/b" adds a folder level, "2 | 50%" is unescaped
    store = original_plain_text()
    assert "bk/orders/1 | a/b" in store._versions and "bk/orders/2 | 50%" in store._versions
    # THEN history finds each item
    assert history(store, key("a/b", 1), "bk") == [("insert", {"N": "1"}), ("modify", {"N": "4"})]
    assert history(store, key("50%", 2), "bk") == [("insert", {"N": "2"})]
    # AND restore --key puts it, a whole restore puts all three
    one, _ = restored(store, T0 + 200, tmp_path, prefix="bk", keys=(k.key_json(key("a/b", 1)),))
    assert one == {"a/b": {**key("a/b", 1), **v(4)}}
    every, summary = restored(store, T0 + 50, tmp_path, prefix="bk", target="all")
    assert sorted(every) == ["50%", "a/b", "c"] and every["a/b"]["v"] == {"N": "1"}
    assert not summary.warnings or all("skipped" not in w for w in summary.warnings)
    # AND tables shows no made-up tenant (the "1 " folder is part of a name)
    (table,) = summarize_bucket(store, "bk")
    assert table.tenants == {} and table.total.items == 3


def test_2_plain_text_export_diff(tmp_path: Path) -> None:
    store = original_plain_text()
    assert sorted(i["userId"]["S"] for i in exported(store, T0 + 200, tmp_path, "bk")) == ["50%", "a/b", "c"]
    assert diffed(store, T0 + 50, T0 + 200, "bk")[0] == {"a/b": "changed"}


# -- 3. upgrade in place ------------------------------------------------------------------------------


def upgraded(prefix: str | None = None, *, plain_text: bool = False) -> MemoryStore:
    """The original tool writes u1 and u2 (T0, T0+10); ddb-backup continues in the same bucket and prefix:
    u1 modified at T0+100 and removed at T0+200; u2 removed at T0+200."""
    store, clock = new_bucket()
    tool = OriginalTool(store, prefix=prefix, plain_text=plain_text, clock=clock)
    tool.process([put(key("u1"), v(1), at=T0), put(key("u2"), v(1), at=T0)])
    tool.process([put(key("u1"), v(2), first=False, at=T0 + 10)])
    ours_prefix = prefix or ""
    ours(store, clock, [put(key("u1"), v(3), first=False, at=T0 + 100)], prefix=ours_prefix, plain_text=plain_text)
    ours(
        store,
        clock,
        [remove(key("u1"), v(3), at=T0 + 200), remove(key("u2"), v(1), at=T0 + 200)],
        prefix=ours_prefix,
        plain_text=plain_text,
    )
    return store


@pytest.mark.parametrize(("prefix", "plain_text"), [(None, False), ("bk", False), ("bk", True)])
def test_3_upgrade_in_place_restore_sees_one_history(tmp_path: Path, prefix: str | None, plain_text: bool) -> None:
    store = upgraded(prefix, plain_text=plain_text)
    where = prefix or ""
    # THEN before the upgrade: the original's latest image; after our change: ours; after our removal: gone
    assert restored(store, T0 + 50, tmp_path, prefix=where)[0]["u1"]["v"] == {"N": "2"}
    assert restored(store, T0 + 150, tmp_path, prefix=where, target="b")[0]["u1"]["v"] == {"N": "3"}
    after, _ = restored(store, T0 + 300, tmp_path, prefix=where, target="c")
    assert after == {}
    assert exported(store, T0 + 300, tmp_path, where) == []
    assert sorted(i["userId"]["S"] for i in exported(store, T0 + 150, tmp_path, where)) == ["u1", "u2"]


def test_3_upgrade_in_place_history_and_diff() -> None:
    store = upgraded()
    assert history(store, key("u1")) == [
        ("insert", {"N": "1"}),
        ("modify", {"N": "2"}),
        ("modify", {"N": "3"}),
        ("remove", None),
    ]
    changes, counts = diffed(store, T0 + 50, T0 + 150)
    assert changes == {"u1": "changed"} and counts.unchanged == 1
    assert diffed(store, T0 + 150, T0 + 300)[0] == {"u1": "removed", "u2": "removed"}
    assert diffed(store, T0 + 50, T0 + 300)[0] == {"u1": "removed", "u2": "removed"}
    # AND an item changed between the times counts once: its other names are not counted unchanged
    assert diffed(store, T0 + 150, T0 + 300)[1].unchanged == 0


@pytest.mark.parametrize("plain_text", [False, True])
def test_3_a_changed_item_counts_once_when_our_object_was_present_at_the_start(plain_text: bool) -> None:
    # GIVEN the original tool wrote u1 and u2 under its names; ddb-backup then wrote both under ours
    # (present at the start) and changed u1 after it
    store, clock = new_bucket()
    OriginalTool(store, prefix="bk", plain_text=plain_text, clock=clock).process(
        [put(key(u), v(1), at=T0) for u in ("u1", "u2")]
    )
    settings = {"prefix": "bk", "plain_text": plain_text}
    ours(store, clock, [put(key(u), v(2), first=False, at=T0 + 10) for u in ("u1", "u2")], **settings)
    ours(store, clock, [put(key("u1"), v(3), first=False, at=T0 + 100)], **settings)
    # THEN diff counts u1 changed, and its original name is not counted unchanged as well
    changes, counts = diffed(store, T0 + 50, T0 + 150, "bk")
    assert changes == {"u1": "changed"}
    assert (counts.added, counts.removed, counts.changed) == (0, 0, 1)
    # (u2 is unchanged and kept under two names: unchanged counts objects, docs/format.md)
    assert counts.unchanged == 2


def test_3_upgrade_in_place_verify_is_in_sync() -> None:
    # GIVEN an upgraded bucket where u1 was modified by ddb-backup (still present) and the live table
    store, clock = new_bucket()
    OriginalTool(store, clock=clock).process([put(key("u1"), v(1), at=T0), put(key("u2"), v(1), at=T0)])
    ours(store, clock, [put(key("u1"), v(3), first=False, at=T0 + 100), remove(key("u2"), v(1), at=T0 + 100)])
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="orders", KeySchema=KEY_SCHEMA, AttributeDefinitions=ATTRIBUTES, BillingMode="PAY_PER_REQUEST"
        )
        ddb.put_item(TableName="orders", Item={**key("u1"), **v(3)})
        options = VerifyOptions(prefix="", table="orders", schema=SCHEMA, grace=0.0)
        report = verify_table(store, ddb, options, clock=lambda: T0 + 1000, sleep=lambda s: None)
    # THEN in sync: one item, no drift
    assert report.in_sync, report.as_dict()
    assert (report.backup_items, report.matching) == (1, 1)


# -- 4. rollback ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("user_key", ["userId", "id"])
def test_4_rollback_the_originals_later_delete_is_seen(tmp_path: Path, user_key: str) -> None:
    # GIVEN ddb-backup removed the item; then the original tool re-created it and deleted it again
    store, clock = new_bucket()
    schema = SCHEMA if user_key == "userId" else k.KeySchema("id")
    item = key("u1") if user_key == "userId" else {"id": {"S": "u1"}}
    capture = Capture(store, CaptureSettings(prefix="bk", workers=1), lambda table: schema)
    for raw in [put(item, v(1), at=T0), remove(item, v(1), at=T0 + 100)]:
        clock.now = raw["dynamodb"]["ApproximateCreationDateTime"] + 1
        assert not capture.process([raw]).failures
    tool = OriginalTool(store, prefix="bk", clock=clock)
    tool.process([put(item, v(5), at=T0 + 200), remove(item, v(5), at=T0 + 300)])
    # THEN present between the original's re-creation and its delete, absent after it
    from ddb_backup.restore.resolve import resolver_for
    from ddb_backup.restore.state import iter_states

    def present(at: float) -> list[Any]:
        resolver = resolver_for(store, "bk", "orders", schema)
        states = [s for _, s in iter_states(store, table_ranges(store, "bk", "orders"), PointInTime(at)) if s]
        taken = [resolver.resolve(s, at) for s in states if s.present]
        return [r.image["v"] for r in taken if r.image is not None and r.kind == "take"]

    assert present(T0 + 50) == [{"N": "1"}]
    assert present(T0 + 150) == []
    assert present(T0 + 250) == [{"N": "5"}]
    assert present(T0 + 400) == []
    events = [e.event for e in item_history(store, locate_items(store, "bk", "orders", item, schema=schema))]
    assert events == ["insert", "remove", "insert", "remove"]


def test_4_rollback_restore_and_diff(tmp_path: Path) -> None:
    store, clock = new_bucket()
    ours(store, clock, [put(key("u1"), v(1), at=T0), remove(key("u1"), v(1), at=T0 + 100)])
    OriginalTool(store, clock=clock, prefix="").process([put(key("u1"), v(5), at=T0 + 200)])
    OriginalTool(store, clock=clock, prefix="").process([remove(key("u1"), v(5), at=T0 + 300)])
    assert restored(store, T0 + 250, tmp_path)[0]["u1"]["v"] == {"N": "5"}
    assert restored(store, T0 + 400, tmp_path, target="later")[0] == {}
    assert diffed(store, T0 + 150, T0 + 250)[0] == {"u1": "added"}
    assert diffed(store, T0 + 250, T0 + 400)[0] == {"u1": "removed"}


def test_4_rollback_verify_is_in_sync_and_a_backup_only_item_is_drift() -> None:
    # GIVEN ddb-backup removed u1 and u2, then the original tool re-created u1 (its /orders/<md5> wins)
    store, clock = new_bucket()
    ours(store, clock, [put(key(u), v(1), at=T0) for u in ("u1", "u2")])
    ours(store, clock, [remove(key(u), v(1), at=T0 + 100) for u in ("u1", "u2")])
    OriginalTool(store, clock=clock, prefix="").process([put(key("u1"), v(7), at=T0 + 200)])
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="orders", KeySchema=KEY_SCHEMA, AttributeDefinitions=ATTRIBUTES, BillingMode="PAY_PER_REQUEST"
        )
        ddb.put_item(TableName="orders", Item={**key("u1"), **v(7)})
        options = VerifyOptions(prefix="", table="orders", schema=SCHEMA, grace=0.0)
        report = verify_table(store, ddb, options, clock=lambda: T0 + 1000, sleep=lambda s: None)
        # THEN in sync: our tombstone under the item's other name is not a difference, nothing in flight
        assert report.in_sync and not report.in_flight, report.as_dict()
        assert (report.backup_items, report.matching) == (1, 1)
        # WHEN the table loses u1 without the backup seeing it, and gains u3 (a quiet bucket)
        ddb.delete_item(TableName="orders", Key=key("u1"))
        ddb.put_item(TableName="orders", Item={**key("u3"), **v(1)})
        report = verify_table(store, ddb, options, clock=lambda: T0 + 1000, sleep=lambda s: None)
    # THEN both are drift, the same when read again: never in flight
    assert report.counts() == {"missing": 1, "extra": 1, "differs": 0}, report.as_dict()
    assert not report.in_flight


# -- 5. a tenant changed under the original tool -------------------------------------------------------


def tenant_moved() -> MemoryStore:
    store, clock = new_bucket()
    tool = OriginalTool(store, prefix="bk", tenant_column="tenant", clock=clock)
    tenant_a, tenant_b = {"tenant": {"S": "acme/eu"}}, {"tenant": {"S": "beta"}}
    tool.process([put(key("u1"), {**tenant_a, **v(1)}, at=T0), put(key("u2"), {**tenant_b, **v(1)}, at=T0)])
    moved = put(key("u1"), {**tenant_b, **v(2)}, first=False, at=T0 + 100)
    moved["dynamodb"]["OldImage"] = {**key("u1"), **tenant_a, **v(1)}
    tool.process([moved])
    return store


def test_5_the_old_tenant_folder_never_wins(tmp_path: Path) -> None:
    store = tenant_moved()
    assert "bk/orders/acme/eu/" + OriginalTool(store).name(key("u1")) in store._versions  # stale, still current
    for workers in (1, 2, 3, 8):
        items, _ = restored(store, T0 + 200, tmp_path, prefix="bk", workers=workers, target=f"t{workers}")
        assert items["u1"]["tenant"] == {"S": "beta"} and items["u1"]["v"] == {"N": "2"}
    before, _ = restored(store, T0 + 50, tmp_path, prefix="bk", target="before")
    assert before["u1"]["tenant"] == {"S": "acme/eu"}
    assert [i["v"] for i in exported(store, T0 + 200, tmp_path, "bk") if i["userId"]["S"] == "u1"] == [{"N": "2"}]


def test_5_diff_finds_the_old_tenant_folder() -> None:
    store, clock = new_bucket()
    tool = OriginalTool(store, prefix="bk", tenant_column="tenant", clock=clock)
    tool.process([put(key("u1"), {"tenant": {"S": "acme"}, **v(1)}, at=T0)])
    moved = put(key("u1"), {"tenant": {"S": "beta"}, **v(2)}, first=False, at=T0 + 100)
    tool.process([moved])
    assert diffed(store, T0 + 50, T0 + 200, "bk")[0] == {"u1": "changed"}


def test_5_history_of_a_tenant_keeps_the_items_life_in_its_old_tenant_folder() -> None:
    # GIVEN the original tool moved u1 from tenant t1 to t2 (t1's object stays), then ddb-backup modified it
    store, clock = new_bucket()
    tool = OriginalTool(store, prefix="bk", tenant_column="tenant", clock=clock)
    tool.process([put(key("u1"), {"tenant": {"S": "t1"}, **v(1)}, at=T0)])
    moved = put(key("u1"), {"tenant": {"S": "t2"}, **v(2)}, first=False, at=T0 + 100)
    moved["dynamodb"]["OldImage"] = {**key("u1"), "tenant": {"S": "t1"}, **v(1)}
    tool.process([moved])
    modified = put(key("u1"), {"tenant": {"S": "t2"}, **v(3)}, first=False, at=T0 + 200)
    modified["dynamodb"]["OldImage"] = {**key("u1"), "tenant": {"S": "t2"}, **v(2)}
    ours(store, clock, [modified], prefix="bk", tenant_column="tenant")
    # THEN its history under --tenant t2 starts with its insert under t1
    assert history(store, key("u1"), "bk", tenant="t2") == [
        ("insert", v(1)["v"]),
        ("modify", v(2)["v"]),
        ("modify", v(3)["v"]),
    ]


def test_readers_cut_a_small_table_as_restore_does_one_listing_per_folder(tmp_path: Path) -> None:
    # GIVEN a small bucket written by the original tool, then by ddb-backup
    store, clock = new_bucket()
    OriginalTool(store, clock=clock).process([put(key(u), v(1), at=T0) for u in ("u1", "u2")])
    ours(store, clock, [put(key("u3"), v(1), at=T0 + 100)])
    # THEN export, diff, verify and tables read each folder whole, as restore does: no KeyMarker (some S3
    # stand-ins answer a lone KeyMarker wrongly), one LIST per folder instead of 256
    ranges = table_ranges(store, "", "orders")
    assert [(r.prefix, r.start, r.end) for r in ranges] == [("orders/", None, None), ("/orders/", None, None)]
    assert sorted(i["userId"]["S"] for i in exported(store, T0 + 200, tmp_path, "")) == ["u1", "u2", "u3"]


def test_5_diff_sees_our_removal_under_the_escaped_tenant_folder() -> None:
    # GIVEN the original tool wrote under the raw tenant folder "t%2"; ddb-backup removed the item
    # under its escaped folder "t%252" (plain-text names), and another item under "t1"
    store, clock = new_bucket()
    items = [(key("50%"), "t%2"), (key("p"), "t1")]
    tool = OriginalTool(store, prefix="bk", tenant_column="tenant", clock=clock)
    tool.process([put(item, {"tenant": {"S": tenant}, **v(1)}, at=T0) for item, tenant in items])
    removals = [remove(item, {"tenant": {"S": tenant}, **v(1)}, at=T0 + 100) for item, tenant in items]
    ours(store, clock, removals, prefix="bk", plain_text=True, tenant_column="tenant")
    # THEN diff reports both removals
    assert diffed(store, T0 + 50, T0 + 200, "bk")[0] == {"50%": "removed", "p": "removed"}


def plain_text_tenants() -> MemoryStore:
    """The original tool with PlainTextKeyAsFilename and MultiTenancyColumn "tenant" ('/', '%' and ' | '
    in key values, a '%' in a tenant, a tenant change), then ddb-backup (plain text) changes u/1 and mv
    and removes 50% and plain at T0+100."""
    store, clock = new_bucket()
    tool = OriginalTool(store, prefix="bk", plain_text=True, tenant_column="tenant", clock=clock)
    tool.process([put(text_key(*x), tenant_v(t, 1), at=T0) for x, t in PLAIN_TENANTS.items()])
    tool.process([moved(text_key("mv", "1"), tenant_v("t1", 1), tenant_v("t2", 2), at=T0 + 10)])
    changes = [
        moved(text_key("u/1", "2026/01/01"), tenant_v("t1", 1), tenant_v("t1", 2), at=T0 + 100),
        remove(text_key("50%", "a | b"), tenant_v("t%2", 1), at=T0 + 100),
        moved(text_key("mv", "1"), tenant_v("t2", 2), tenant_v("t2", 3), at=T0 + 100),
        remove(text_key("plain", "x%2Fy"), tenant_v("t1", 1), at=T0 + 100),
    ]
    ours(store, clock, changes, prefix="bk", plain_text=True, tenant_column="tenant")
    return store


PLAIN_TENANTS = {("u/1", "2026/01/01"): "t1", ("50%", "a | b"): "t%2", ("a | b", "c"): "t1"}
PLAIN_TENANTS |= {("plain", "x%2Fy"): "t1", ("mv", "1"): "t1"}


def text_key(user: str, created: str) -> dict[str, Any]:
    return {"userId": {"S": user}, "createdAt": {"S": created}}


def tenant_v(tenant: str, n: int) -> dict[str, Any]:
    return {"tenant": {"S": tenant}, **v(n)}


def moved(item: dict[str, Any], old: dict[str, Any], new: dict[str, Any], *, at: float) -> dict[str, Any]:
    record = put(item, new, first=False, at=at)
    record["dynamodb"]["OldImage"] = {**item, **old}
    return record


def test_2_plain_text_tenants_tables_is_a_table_not_a_prefix() -> None:
    # GIVEN the original tool's unescaped '/' put folders two levels below the table's folder
    store = plain_text_tenants()
    assert "bk/orders/t1/2026/01/01 | u/1" in store._versions
    # THEN tables takes orders for a table (not a prefix) and shows its tenants
    assert not looks_like_prefix(store, "bk", "orders")
    (table,) = summarize_bucket(store, "bk")
    assert set(table.tenants) == {"t1", "t2", "t%2", "t%252"}, table.as_dict()


def test_2_plain_text_tenants_diff_counts_each_item_once() -> None:
    store = plain_text_tenants()
    changes, counts = diffed(store, T0 + 50, T0 + 200, "bk")
    assert changes == {"u/1": "changed", "50%": "removed", "mv": "changed", "plain": "removed"}
    assert (counts.added, counts.removed, counts.changed) == (0, 2, 2)
    # only "a | b" is unchanged: not the other names of the changed items, nor mv's stale copy in its old
    # tenant folder t1 (the original tool left it there when it moved mv to t2)
    assert counts.unchanged == 1


# -- issue 11.2: a bucket shared by two stacks ---------------------------------------------------------


def shared_bucket() -> MemoryStore:
    """Stack A: no prefix, table orders. Stack B: prefix "orders", table customers (orders/customers/<md5>)."""
    store, clock = new_bucket()
    ours(store, clock, [put(key("u1"), v(1), at=T0), put(key("u2"), v(1), at=T0)])
    records = [put(key(f"c{n}"), v(9), at=T0) for n in range(3)]
    for raw in records:
        raw["eventSourceARN"] = raw["eventSourceARN"].replace("table/orders", "table/customers")
    ours(store, clock, records, prefix="orders")
    return store


def shared_bucket_with_attribute() -> MemoryStore:
    """As ``shared_bucket``, but B's items hold an attribute whose value is ``customers`` (B's table name,
    so ``orders/customers/<md5>`` looks like tenant ``customers`` of table ``orders``), and B removed one."""
    store, clock = new_bucket()
    ours(store, clock, [put(key("u1"), v(1), at=T0), put(key("u2"), v(1), at=T0)])
    records = [put(key(f"c{n}"), {"kind": {"S": "customers"}, **v(9)}, at=T0) for n in range(3)]
    records.append(remove(key("c0"), {"kind": {"S": "customers"}, **v(9)}, at=T0 + 10))
    for raw in records:
        raw["eventSourceARN"] = raw["eventSourceARN"].replace("table/orders", "table/customers")
    ours(store, clock, records, prefix="orders")
    return store


def test_11_2_an_attribute_equal_to_the_other_stacks_table_name_is_no_tenant(tmp_path: Path) -> None:
    store = shared_bucket_with_attribute()
    items, _ = restored(store, T0 + 50, tmp_path)
    assert sorted(items) == ["u1", "u2"]
    assert sorted(i["userId"]["S"] for i in exported(store, T0 + 50, tmp_path)) == ["u1", "u2"]
    changes, _ = diffed(store, T0 - 50, T0 + 50)
    assert changes == {"u1": "added", "u2": "added"}
    with pytest.raises(UserError, match="holds no version"):
        history(store, key("c1"))


def test_11_2_a_shared_bucket_does_not_mix_stacks(tmp_path: Path) -> None:
    store = shared_bucket()
    items, summary = restored(store, T0 + 50, tmp_path)
    assert sorted(items) == ["u1", "u2"]
    assert any(w.startswith("skipped 3 objects: a name no writer of this table") for w in summary.warnings)
    assert sorted(i["userId"]["S"] for i in exported(store, T0 + 50, tmp_path)) == ["u1", "u2"]
    changes, counts = diffed(store, T0 - 50, T0 + 50)
    assert changes == {"u1": "added", "u2": "added"} and counts.skipped == 3


# -- a shared bucket the original tool wrote too: which tenant attribute a table has ---------------------


def _as_customers(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for raw in records:
        raw["eventSourceARN"] = raw["eventSourceARN"].replace("table/orders", "table/customers")
    return records


def shared_bucket_original_tool(*, ours_too: bool = True) -> MemoryStore:
    """Stack A (no prefix, table orders) and stack B (prefix "orders", table customers), both written by
    the original tool and (``ours_too``) by ddb-backup; B's items hold attributes whose value is
    ``customers`` (``orders/customers/<md5>`` looks like tenant ``customers`` of table ``orders``), and a
    stray copy of an item sits at ``orders/old/<md5>`` with an attribute ``old``. No object of the
    original tool records a tenant attribute."""
    store, clock = new_bucket()
    OriginalTool(store, clock=clock).process([put(key(u), v(1), at=T0) for u in ("u1", "u2")])
    b_records = [put(key("c1"), v(9), at=T0), put(key("c2"), {"entity": {"S": "customers"}, **v(9)}, at=T0)]
    OriginalTool(store, prefix="orders", clock=clock).process(_as_customers(b_records))
    if ours_too:
        ours(store, clock, [put(key("u3"), v(1), at=T0 + 1)])
        ours(
            store,
            clock,
            _as_customers([put(key("c3"), {"kind": {"S": "customers"}, **v(9)}, at=T0 + 1)]),
            prefix="orders",
        )
    stray = {**key("u4"), "status": {"S": "old"}, **v(1)}
    store.put("orders/old/" + OriginalTool(store).name(key("u4")), json.dumps(stray).encode(), {})
    return store


def shared_bucket_original_tool_schema() -> MemoryStore:
    """The original tool's objects only, and a saved schema that records "no tenant attribute"."""
    store = shared_bucket_original_tool(ours_too=False)
    table = {"TableName": "orders", "KeySchema": KEY_SCHEMA, "AttributeDefinitions": ATTRIBUTES}
    save_schema(store, "", {"Table": table}, tenancy=Tenancy(None))
    return store


def test_11_2_our_versions_tell_the_original_tools_objects_the_table_has_no_tenants(tmp_path: Path) -> None:
    # GIVEN stack A's table has versions of ours recording "no tenant attribute"
    store = shared_bucket_original_tool()
    # THEN the original tool's objects under tenant-like folders are not A's items
    items, summary = restored(store, T0 + 50, tmp_path)
    assert sorted(items) == ["u1", "u2", "u3"]
    assert any("orders/old/" in w for w in summary.warnings if w.startswith("skipped"))
    assert sorted(i["userId"]["S"] for i in exported(store, T0 + 50, tmp_path)) == ["u1", "u2", "u3"]
    assert diffed(store, T0 - 50, T0 + 50)[0] == dict.fromkeys(["u1", "u2", "u3"], "added")
    (table,) = [t for t in summarize_bucket(store, "") if t.name == "orders"]
    assert table.tenants == {}
    # AND learning it costs a bounded number of requests, once per reader, never per item
    resolver = resolver_for(store, "", "orders", SCHEMA)
    before = store.requests
    assert resolver.table_tenancy() == TableTenancy(Tenancy(None), OUR_VERSIONS)
    assert resolver.table_tenancy() is resolver.table_tenancy()
    assert 2 <= store.requests - before <= 2 + PROBE_READS  # the saved schema's GET, one LIST, the reads


def test_11_2_without_any_record_the_fallback_is_ambiguous_and_an_option_decides(tmp_path: Path) -> None:
    # GIVEN only the original tool wrote, nothing records the table's tenant attribute
    store = shared_bucket_original_tool(ours_too=False)
    # THEN the documented fallback takes c2 (entity "customers") and u4 (status "old") as tenants' items
    items, _ = restored(store, T0 + 50, tmp_path, target="guess")
    assert sorted(items) == ["c2", "u1", "u2", "u4"]
    # AND --no-tenants decides it for every reader
    no_tenants = Tenancy(None)
    items, _ = restored(store, T0 + 50, tmp_path, target="told", tenancy=no_tenants)
    assert sorted(items) == ["u1", "u2"]
    resolver = resolver_for(store, "", "orders", tenancy=no_tenants)
    root = tmp_path / "export-told"
    manifest = ExportManifest("orders", T0 + 50, "none", source={"bucket": "bk", "prefix": ""})
    ranges = table_ranges(store, "", "orders")
    export_table(store, ranges, PointInTime(at=T0 + 50), DirDestination(root), manifest, resolver=resolver)
    assert sorted(i["userId"]["S"] for i in read_export(root)) == ["u1", "u2"]
    counts = DiffCounts()
    resolver = resolver_for(store, "", "orders", SCHEMA, tenancy=no_tenants)
    changes = diff_table(store, ranges, T0 - 50, T0 + 50, counts, schema=SCHEMA, resolver=resolver, table="orders")
    assert sorted(change.key["userId"]["S"] for change in changes if change.key) == ["u1", "u2"]
    (table,) = [t for t in summarize_bucket(store, "", tenancy=no_tenants) if t.name == "orders"]
    assert table.tenants == {} and table.total.items == 2
    # AND --tenant-column names the attribute: only a folder that attribute gives is a tenant
    items, _ = restored(store, T0 + 50, tmp_path, target="status", tenancy=Tenancy("status"))
    assert sorted(items) == ["u4"]


def test_11_2_a_wrong_tenant_on_a_table_without_tenants_names_no_made_up_tenants() -> None:
    # GIVEN the shared bucket: stack A's table orders has no tenants (our versions say so), and its folder
    # holds stack B's customers/ and a stray old/ sub-folder
    store = shared_bucket_original_tool()
    # THEN --tenant of a folder it lacks says the table has no tenants, not "its tenants: customers, old"
    with pytest.raises(NothingMatches, match="has no tenants") as refused:
        check_tenant(store, "", "orders", "acme")
    assert "customers" not in str(refused.value) + str(refused.value.hint)


@pytest.mark.parametrize("folder", ["old", "customers"])
def test_11_2_a_tenant_folder_of_a_table_without_tenants_is_refused_before_anything(folder: str) -> None:
    # GIVEN stack A's table orders has no tenants (our versions say so), and its folder holds a stray old/
    # and stack B's customers/ sub-folders
    store = shared_bucket_original_tool()
    # THEN --tenant naming one of those folders is refused (nothing matches), not a restore of 0 items
    with pytest.raises(NothingMatches, match="has no tenants"):
        check_tenant(store, "", "orders", folder)


def test_11_2_the_saved_schema_tells_the_table_has_no_tenants(tmp_path: Path) -> None:
    store = shared_bucket_original_tool_schema()
    items, _ = restored(store, T0 + 50, tmp_path)
    assert sorted(items) == ["u1", "u2"]
    assert resolver_for(store, "", "orders").table_tenancy() == TableTenancy(Tenancy(None), SAVED_SCHEMA)


def test_11_2_history_of_a_tenants_item_leaves_out_another_stacks_object_of_the_same_key() -> None:
    # GIVEN table orders with tenants (the original tool, then ddb-backup recording "tenant"), and stack B
    # (prefix "orders", table customers) holding an item of the same key with an attribute "customers"
    store, clock = new_bucket()
    OriginalTool(store, tenant_column="tenant", prefix="", clock=clock).process(
        [put(key("u1"), {"tenant": {"S": "t1"}, **v(1)}, at=T0)]
    )
    ours(store, clock, [put(key("u2"), {"tenant": {"S": "t1"}, **v(1)}, at=T0 + 1)], tenant_column="tenant")
    b_item = put(key("u1"), {"kind": {"S": "customers"}, **v(9)}, at=T0 + 2)
    OriginalTool(store, prefix="orders", clock=clock).process(_as_customers([b_item]))
    assert any(name.startswith("orders/customers/") for name in store._versions)
    # THEN history --tenant t1 (which looks in every tenant folder) shows only the table's own versions
    entries = item_history(
        store,
        locate_items(store, "", "orders", key("u1"), schema=SCHEMA, tenant="t1"),
        belongs=belongs_to_table(resolver_for(store, "", "orders", SCHEMA), key("u1")),
    )
    assert [(e.event, (e.image or {}).get("v")) for e in entries] == [("insert", v(1)["v"])]


# -- issue 11.3: stray objects -------------------------------------------------------------------------


def test_11_3_stray_objects_are_skipped_and_reported_never_a_crash(tmp_path: Path) -> None:
    store, clock = new_bucket()
    ours(store, clock, [put(key("u1"), v(1), at=T0)])
    store.put("orders/list.json", b"[1, 2]", {})
    store.put("orders/object.json", b'{"a": 1}', {})
    store.put("orders/notes.txt", b"hello", {})
    store.put("orders/no-key", json.dumps({"other": {"S": "x"}}).encode(), {})
    items, summary = restored(store, T0 + 50, tmp_path)
    assert sorted(items) == ["u1"]
    skipped = "\n".join(w for w in summary.warnings if w.startswith("skipped"))
    assert "not JSON" in skipped and "a JSON list" in skipped and "typed DynamoDB values" in skipped
    assert summary.rejected == 1  # an image without the key attributes goes to the rejects file (issue 11.5)
    # AND a resumed restore (the checkpoint of a run that stopped) gets past them too
    assert sorted(exported(store, T0 + 50, tmp_path)[0]["userId"].values()) == ["u1"]
    assert history(store, key("u1")) == [("insert", {"N": "1"})]


def test_11_3_a_body_that_only_looks_typed_is_a_stray_not_a_reject(tmp_path: Path) -> None:
    store, clock = new_bucket()
    ours(store, clock, [put(key("u1"), v(1), at=T0)])
    store.put("orders/typed-bad", json.dumps({"userId": {"S": 1}, "createdAt": {"N": "1"}}).encode(), {})
    store.put("orders/nested-bad", json.dumps({"userId": {"M": {"a": {"BOOL": "yes"}}}}).encode(), {})
    store.put("orders/null", b"null", {})
    items, summary = restored(store, T0 + 50, tmp_path)
    assert sorted(items) == ["u1"] and summary.rejected == 0
    skipped = "\n".join(w for w in summary.warnings if w.startswith("skipped"))
    assert "typed DynamoDB values" in skipped and "(JSON null)" in skipped and "NoneType" not in skipped


def test_11_3_empty_objects_at_names_no_writer_gives_are_reported_as_strays(tmp_path: Path) -> None:
    store, clock = new_bucket()
    ours(store, clock, [put(key("u1"), v(1), at=T0), put(key("u2"), v(1), at=T0), remove(key("u2"), at=T0 + 1)])
    for stray in ("orders/", "orders/sub/", "orders/empty"):
        store.put(stray, b"", {})
    items, summary = restored(store, T0 + 50, tmp_path)
    assert sorted(items) == ["u1"]
    (line,) = [w for w in summary.warnings if "empty object" in w]
    assert line.startswith("skipped 3 objects") and "orders/sub/" in line  # not u2's removal
    assert sorted(i["userId"]["S"] for i in exported(store, T0 + 50, tmp_path)) == ["u1"]
    manifest = next(json.loads(p.read_text()) for p in tmp_path.rglob("manifest.json"))
    assert "empty object" in json.dumps(manifest["skipped"])  # the folder markers: no schema needed


# -- every reader on every fixture bucket ---------------------------------------------------------------


def rollback_bucket() -> MemoryStore:
    store, clock = new_bucket()
    ours(store, clock, [put(key("u1"), v(1), at=T0), put(key("u2"), v(1), at=T0)], prefix="bk")
    ours(store, clock, [remove(key("u1"), v(1), at=T0 + 100)], prefix="bk")
    OriginalTool(store, prefix="bk", clock=clock).process([put(key("u1"), v(5), at=T0 + 200)])
    return store


def both_key_orders() -> MemoryStore:
    """The original tool's backfill hashed key-schema order (hash first), its Lambda the stream's order
    (here sorted by name: our own name, but without metadata): one item, two names."""
    store, clock = new_bucket()
    tool = OriginalTool(store, prefix="bk", clock=clock)
    tool.process([put(key("u1"), v(1), at=T0), put(key("u2"), v(1), at=T0)])
    sorted_keys = {"createdAt": {"N": "1"}, "userId": {"S": "u1"}}
    tool.process([put(sorted_keys, v(2), first=False, at=T0 + 100)])
    tool.process([remove({"createdAt": {"N": "1"}, "userId": {"S": "u2"}}, v(1), at=T0 + 200)])
    assert sum(1 for name in store._versions if name.startswith("bk/orders/")) == 4
    return store


FIXTURES = {
    # name: (bucket, prefix, the state at T0 + 500 as {userId: v})
    "no prefix": (original_without_prefix, "", {"u1": "1", "u2": "1"}),
    "MD5 in both key orders": (both_key_orders, "bk", {"u1": "2"}),
    "plain text with / and %": (original_plain_text, "bk", {"a/b": "4", "50%": "2", "c": "3"}),
    "upgrade in place (md5)": (lambda: upgraded(None), "", {}),
    "upgrade in place (plain text)": (lambda: upgraded("bk", plain_text=True), "bk", {}),
    "tenants": (tenant_moved, "bk", {"u1": "2", "u2": "1"}),
    "plain text with tenants, / % and | in values": (plain_text_tenants, "bk", {"u/1": "2", "a | b": "1", "mv": "3"}),
    "rollback": (rollback_bucket, "bk", {"u1": "5", "u2": "1"}),
    "shared bucket": (shared_bucket, "", {"u1": "1", "u2": "1"}),
    "shared bucket, an attribute named like B's table": (shared_bucket_with_attribute, "", {"u1": "1", "u2": "1"}),
    "shared bucket, the original tool in both stacks": (
        shared_bucket_original_tool,
        "",
        dict.fromkeys(["u1", "u2", "u3"], "1"),
    ),
    "shared bucket, the original tool's only, a saved schema": (
        shared_bucket_original_tool_schema,
        "",
        {"u1": "1", "u2": "1"},
    ),
}


# diff from T0 + 50 to T0 + 500, the truth: (added, removed, changed, unchanged)
DIFF_FROM_50 = {
    "no prefix": (0, 1, 0, 2),
    "MD5 in both key orders": (0, 1, 1, 0),
    "plain text with / and %": (0, 0, 1, 2),
    "upgrade in place (md5)": (0, 2, 0, 0),
    "upgrade in place (plain text)": (0, 2, 0, 0),
    "tenants": (0, 0, 1, 1),
    "plain text with tenants, / % and | in values": (0, 2, 2, 1),
    "rollback": (0, 0, 1, 1),  # our removal, then the original tool's re-creation: changed, not removed
    "shared bucket": (0, 0, 0, 2),
    "shared bucket, an attribute named like B's table": (0, 0, 0, 2),
    "shared bucket, the original tool in both stacks": (0, 0, 0, 3),
    "shared bucket, the original tool's only, a saved schema": (0, 0, 0, 2),
}
# the documented limits of diff (docs/format.md, "Buckets written by the original tool"): unchanged objects
# are not read (another stack's objects count unchanged), an unescaped tenant holding "/" is found from its
# old folder only
DIFF_LIMITS = {
    "shared bucket",
    "shared bucket, an attribute named like B's table",
    "shared bucket, the original tool in both stacks",
    "shared bucket, the original tool's only, a saved schema",
    "tenants",
}
TEXT_KEYS = {"plain text with tenants, / % and | in values"}  # createdAt is a string there
TENANT_FOLDERS = {
    "tenants": {"acme/eu", "beta"},
    "plain text with tenants, / % and | in values": {"t1", "t2", "t%2", "t%252"},
}


@pytest.mark.parametrize("fixture", list(FIXTURES))
def test_every_reader_gives_the_state_on_every_fixture(fixture: str, tmp_path: Path) -> None:
    build, prefix, expected = FIXTURES[fixture]
    store = build()
    at = T0 + 500
    created_type = "S" if fixture in TEXT_KEYS else "N"
    # restore and export
    items, _ = restored(store, at, tmp_path, created_type, prefix=prefix)
    assert {u: image["v"]["N"] for u, image in items.items()} == expected
    assert {i["userId"]["S"]: i["v"]["N"] for i in exported(store, at, tmp_path, prefix)} == expected
    # diff from before anything to now: every present item added, nothing else
    changes, counts = diffed(store, T0 - 100, at, prefix)
    assert changes == dict.fromkeys(expected, "added")
    assert (counts.added, counts.removed, counts.changed, counts.unchanged) == (len(expected), 0, 0, 0)
    # and from after the first writes to now: each item once (added, removed, changed, unchanged)
    changes, counts = diffed(store, T0 + 50, at, prefix)
    truth = DIFF_FROM_50[fixture]
    if fixture not in DIFF_LIMITS:
        assert (counts.added, counts.removed, counts.changed, counts.unchanged) == truth, counts
        assert [sum(kind == k for kind in changes.values()) for k in ("removed", "changed")] == list(truth[1:3])
    # history: the newest change of each present item is its image at T
    for user, value in expected.items():
        item = items[user]
        tenant = item["tenant"]["S"] if "tenant" in item else None  # history --tenant: the item's folder now
        item_key = k.canonical_key({n: item[n] for n in ("userId", "createdAt")})
        assert history(store, item_key, prefix, tenant)[-1][1] == {"N": value}
    # tables: the table, no made-up tenants (only the tenants fixture has tenants)
    (table,) = [t for t in summarize_bucket(store, prefix) if t.name == "orders"]
    assert set(table.tenants) == TENANT_FOLDERS.get(fixture, set())  # the raw tenant (the original's) too
    # verify: a live table holding exactly the state is in sync
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="orders",
            KeySchema=KEY_SCHEMA,
            AttributeDefinitions=attributes(created_type),
            BillingMode="PAY_PER_REQUEST",
        )
        for image in items.values():
            ddb.put_item(TableName="orders", Item=image)
        tenant_column = "tenant" if fixture in TENANT_FOLDERS else None
        options = VerifyOptions(prefix=prefix, table="orders", schema=SCHEMA, grace=0.0, tenant_column=tenant_column)
        report = verify_table(store, ddb, options, clock=lambda: T0 + 10_000, sleep=lambda s: None)
    assert report.in_sync, report.as_dict()
    assert report.matching == len(expected)


def moved_back() -> MemoryStore:
    """The original tool moved u1 from tenant t1 to t2 (t1's copy stays current); ddb-backup moved it back
    to t1 at T0+200 (new image under t1, a tenant-change removal under t2, the same change)."""
    store, clock = new_bucket()
    tool = OriginalTool(store, prefix="bk", tenant_column="tenant", clock=clock)
    tool.process([put(key("u1"), tenant_v("t1", 1), at=T0)])
    tool.process([moved(key("u1"), tenant_v("t1", 1), tenant_v("t2", 2), at=T0 + 100)])
    back = moved(key("u1"), tenant_v("t2", 2), tenant_v("t1", 3), at=T0 + 200)
    ours(store, clock, [back], prefix="bk", tenant_column="tenant")
    return store


@pytest.mark.parametrize("tenant", ["t1", "t2"])
def test_5_history_a_tenant_change_removal_is_before_the_new_image_of_the_same_change(tenant: str) -> None:
    # GIVEN u1 moved t1 -> t2 by the original tool, then back to t1 by ddb-backup
    store = moved_back()
    # THEN its history (from either tenant folder) ends with the move back: present in t1, not removed
    events = history(store, key("u1"), "bk", tenant=tenant)
    assert events[-1] == ("modify", v(3)["v"]), events
    assert [e for e, _ in events].count("remove") == 1, events  # the move's removal, before the new image


def test_5_a_key_without_tenant_on_a_table_with_tenants_says_to_name_the_tenant() -> None:
    # GIVEN a table with tenants (ddb-backup's versions record the tenant attribute)
    store = moved_back()
    # THEN --key without --tenant says the item must be named with --tenant and lists its tenants
    with pytest.raises(NothingMatches, match="--tenant") as refused:
        check_keys(store, "bk", "orders", [key("u1")], schema=SCHEMA)
    assert "tenant" in str(refused.value) and "'t1', 't2'" in str(refused.value.hint), refused.value
    check_keys(store, "bk", "orders", [key("u1")], tenant="t1", schema=SCHEMA)  # named: found
    # AND a table known to have no tenants keeps the plain "holds no version" answer
    with pytest.raises(NothingMatches, match="holds no version") as plain:
        check_keys(shared_bucket_original_tool(), "", "orders", [key("nobody")], schema=SCHEMA)
    assert "--tenant" not in str(plain.value.hint).replace("check --key, --tenant and --prefix", "")


def test_11_2_a_folder_that_is_a_prefix_and_the_original_tools_table_without_prefix_is_both() -> None:
    # GIVEN stack A (the original tool, no prefix: /orders/<md5>) and stack B (prefix "orders", table
    # customers: orders/customers/<md5>), and a stray two levels below B's table folder
    store, clock = new_bucket()
    OriginalTool(store, clock=clock).process([put(key(u), v(1), at=T0) for u in ("u1", "u2")])
    OriginalTool(store, prefix="orders", clock=clock).process(_as_customers([put(key("c1"), v(9), at=T0)]))
    store.put("orders/customers/notes/x.json", b"{not json", {})
    # THEN "orders" looks like a prefix (B's), and holds table items right under its folders (A's table)
    assert looks_like_prefix(store, "", "orders")
    assert holds_items_directly(store, "", "orders") and holds_items_directly(store, "/", "orders")
    (orders,) = [t for t in summarize_bucket(store, "") if t.name == "orders"]
    assert orders.total.items == 2 and orders.tenants == {}, orders.as_dict()
    # AND a folder that only holds another stack's table folders and strays holds no items itself
    assert holds_items_directly(store, "orders", "customers")
    store2, clock2 = new_bucket()
    OriginalTool(store2, prefix="orders", clock=clock2).process(_as_customers([put(key("c1"), v(9), at=T0)]))
    store2.put("orders/0-README.txt", b"hello", {})  # a stray right under it, passed over
    assert not holds_items_directly(store2, "", "orders")


def moved_by(writer: str) -> MemoryStore:
    """u1 in tenant t1 at T0 (written by ``writer``: "ours" or "original"); ddb-backup moves it to t2 at
    T0+100 (new image under t2, a tenant-change removal under t1); u2 stays in t1."""
    store, clock = new_bucket()
    first = [put(key("u1"), tenant_v("t1", 1), at=T0), put(key("u2"), tenant_v("t1", 1), at=T0)]
    if writer == "ours":
        ours(store, clock, first, prefix="bk", tenant_column="tenant")
    else:
        OriginalTool(store, prefix="bk", tenant_column="tenant", clock=clock).process(first)
    move = moved(key("u1"), tenant_v("t1", 1), tenant_v("t2", 2), at=T0 + 100)
    ours(store, clock, [move], prefix="bk", tenant_column="tenant")
    return store


def diff_list(store: MemoryStore, start: float, end: float, tenant: str | None = None) -> list[tuple[str, str, Any]]:
    counts = DiffCounts()
    ranges = table_ranges(store, "bk", "orders", tenant)
    changes = diff_table(store, ranges, start, end, counts, schema=SCHEMA, prefix="bk", table="orders")
    found = [(c.key["userId"]["S"] if c.key else c.object_key, c.kind, c.changes.as_dict()) for c in changes]
    assert (counts.added, counts.removed, counts.changed) == tuple(
        sum(kind == wanted for _, kind, _ in found) for wanted in ("added", "removed", "changed")
    )
    return found


@pytest.mark.parametrize("writer", ["ours", "original"])
def test_5_diff_an_item_moved_between_tenants_is_one_changed_item(writer: str) -> None:
    store = moved_by(writer)
    # THEN diffing the whole table reports u1 once, changed (its tenant and v), from its old image
    ((name, kind, changes),) = diff_list(store, T0 + 50, T0 + 200)
    assert (name, kind) == ("u1", "changed"), changes
    assert changes["changed"] == ["tenant", "v"], changes
    # AND restricted to one tenant folder, the item left t1 (removed there) and came to t2 (added there)
    assert [(n, k) for n, k, _ in diff_list(store, T0 + 50, T0 + 200, "t1")] == [("u1", "removed")]
    assert [(n, k) for n, k, _ in diff_list(store, T0 + 50, T0 + 200, "t2")] == [("u1", "added")]


def test_5_diff_an_item_moved_back_by_ddb_backup_is_one_changed_item_from_its_state_at_the_start() -> None:
    # GIVEN the original tool moved u1 t1 -> t2 (stale copy left in t1), then ddb-backup moved it back to t1
    store = moved_back()
    # THEN across the move back: one changed item, from v2 in t2 (not the stale v1 left in t1, which
    # would change only v) to v3 in t1
    ((name, kind, changes),) = diff_list(store, T0 + 150, T0 + 300)
    assert (name, kind) == ("u1", "changed")
    assert changes["changed"] == ["tenant", "v"], changes
