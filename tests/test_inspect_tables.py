"""``tables``: what a bucket holds, per table and tenant."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

from click.testing import CliRunner
from moto import mock_aws

from builders import put, remove
from ddb_backup.cli import cli
from ddb_backup.inspect.tables import folders, summarize_bucket
from ddb_backup.store import VersionEntry
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.s3 import S3Store
from inspect_support import BUCKET, Clock, backed_up, memory_store, versioned_bucket

T0 = 1_764_000_000.0


def test_folders_are_found_by_seeking_past_each_one() -> None:
    store = MemoryStore()
    for key in ["p/a/1", "p/a/2", "p/a0/1", "p/a.b/1", "p/loose", "p/~ddb-backup/tables/a/schema.json", "q/x/1"]:
        store.put(key, b"x", {})
    # in key order ("." sorts before "/"), the loose object skipped, each folder listed once
    assert list(folders(store, "p/")) == ["a.b", "a", "a0", "~ddb-backup"]


class MarkerInclusiveStore(MemoryStore):
    """Lists from ``key_marker`` itself, its versions included (moto's ListObjectVersions does so for a
    key with several versions; S3 starts after the key)."""

    listings = 0

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        self.listings += 1
        assert self.listings < 50, "a seek loop: the same listing again and again"
        before = None if key_marker is None else key_marker[:-1] + chr(ord(key_marker[-1]) - 1) + "\U0010ffff"
        return super().list_versions(prefix, key_marker=before)


def test_folders_end_even_when_a_listing_repeats_the_marker_key() -> None:
    store = MarkerInclusiveStore()
    for key in ["p/loose", "p/loose", "p/t1/a", "p/t1/a", "p/~ddb-backup/tables/t1/schema.json"]:
        store.put(key, b"x", {})  # each key twice: two versions
    assert list(itertools.islice(folders(store, "p/"), 10)) == ["t1", "~ddb-backup"]
    assert list(itertools.islice(folders(store, "p/t1/"), 10)) == []


def test_tables_and_tenants_with_counts_and_write_times() -> None:
    clock = Clock()
    store = memory_store(clock)
    # GIVEN two tables under a prefix, one multi-tenant, and our own folder
    orders = [put({"pk": {"S": "a"}}, at=T0), put({"pk": {"S": "a"}}, first=False, at=T0 + 5)]
    orders += [put({"pk": {"S": "b"}}, at=T0 + 6), remove({"pk": {"S": "b"}}, at=T0 + 9)]
    backed_up(store, orders, clock=clock, prefix="prod")
    tenanted = [
        put({"pk": {"S": n}}, {"t": {"S": t}}, table="users", at=T0 + 20) for n, t in [("x", "acme"), ("y", "a/b")]
    ]
    backed_up(store, tenanted, clock=clock, prefix="prod", tenant_column="t")
    store.put("prod/~ddb-backup/tables/orders/schema.json", b"{}", {})
    # WHEN the bucket is summarized
    summaries = {s.name: s for s in summarize_bucket(store, "prod")}
    # THEN
    assert sorted(summaries) == ["orders", "users"]
    orders_total = summaries["orders"].total
    assert (orders_total.items, orders_total.current_items, orders_total.versions, orders_total.delete_markers) == (
        2,
        1,
        4,
        1,
    )
    assert (orders_total.first_write, orders_total.last_write) == (T0 + 2, T0 + 11)
    assert summaries["orders"].tenants == {}
    assert {t: c.items for t, c in summaries["users"].tenants.items()} == {"acme": 1, "a%2Fb": 1}


@mock_aws
def test_tables_command() -> None:
    s3 = versioned_bucket()
    backed_up(S3Store(s3, BUCKET), [put({"pk": {"S": "a"}}, at=T0)], plain_text=True)
    result = CliRunner().invoke(cli, ["tables", "--bucket", BUCKET, "--json"])
    text = CliRunner().invoke(cli, ["tables", "--bucket", BUCKET])
    assert result.exit_code == 0, result.output
    (table,) = json.loads(result.output)["tables"]
    assert (table["table"], table["items"], table["versions"]) == ("orders", 1, 1)
    assert text.exit_code == 0 and text.output.splitlines()[1].split()[:4] == ["orders", "1", "1", "1"]
