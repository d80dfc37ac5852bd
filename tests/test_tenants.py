"""Multi-tenancy under every tenant value DynamoDB can hold (issue 12.5; docs/format.md, "Multi-tenancy")."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from builders import put, record, remove
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.full_backup import ImageWriter
from ddb_backup.format import aliases as al
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.store.memory import MemoryStore

A = {"pk": {"S": "a"}}
SCHEMA = k.KeySchema("pk")
ODD_TENANTS = [
    {"NULL": True},
    {"BOOL": True},
    {"M": {"region": {"S": "eu"}}},
    {"L": [{"S": "eu"}]},
    {"SS": ["eu", "us"]},
    {"NS": ["1", "2"]},
    {"BS": ["AP8="]},
    {"S": ""},
    {"B": ""},
]


def capture(store: MemoryStore) -> Capture:
    return Capture(store, CaptureSettings(plain_text=True, tenant_column="tenant"), lambda table: SCHEMA)


def keys_written(store: MemoryStore) -> list[str]:
    return [row.key for row in store.list_versions("orders/")]


@pytest.mark.parametrize(
    "tenant", ODD_TENANTS, ids=lambda t: next(iter(t)) + ("-empty" if t in ({"S": ""}, {"B": ""}) else "")
)
def test_a_tenant_of_any_type_never_blocks_the_shard(memory_store: MemoryStore, tenant: dict[str, Any]) -> None:
    # GIVEN an item whose tenant attribute cannot name a folder, inserted then removed
    report = capture(memory_store).process([put(A, {"tenant": tenant}, seq=1), remove(A, {"tenant": tenant}, seq=2)])
    # THEN both records are backed up under the reserved segment, and counted
    assert report.failures == [] and report.written == 2
    assert report.missing_tenant == 2
    assert keys_written(memory_store) == ["orders/%none/a"] * 3


def test_a_missing_tenant_is_logged_by_type_and_item_never_by_value(
    memory_store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ddb_backup.capture.engine"):
        capture(memory_store).process([put(A, {"tenant": {"M": {"secret": {"S": "hidden-value"}}}}, seq=1)])
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.__dict__["tenant_type"] == "M" and warning.__dict__["item"] == k.md5_object_name(A)
    assert "hidden-value" not in caplog.text


def test_a_tenant_that_becomes_null_moves_the_item_to_the_reserved_folder(memory_store: MemoryStore) -> None:
    move = record("MODIFY", A, new={**A, "tenant": {"NULL": True}}, old={**A, "tenant": {"S": "acme"}}, seq=2)
    report = capture(memory_store).process([put(A, {"tenant": {"S": "acme"}}, seq=1), move])
    assert report.failures == []
    assert json.loads(memory_store.get("orders/%none/a").body)["tenant"] == {"NULL": True}
    marker, tombstone = list(memory_store.list_versions("orders/acme/a"))[:2]
    assert marker.is_delete_marker
    assert memory_store.get("orders/acme/a", tombstone.version_id).metadata["removed-by"] == "tenant-change"


def test_a_change_between_two_odd_tenants_is_no_move(memory_store: MemoryStore) -> None:
    # Both values name no folder: the segment, not the value, decides whether the item moved.
    change = record("MODIFY", A, new={**A, "tenant": {"L": []}}, old={**A, "tenant": {"M": {}}}, seq=2)
    report = capture(memory_store).process([put(A, {"tenant": {"M": {}}}, seq=1), change])
    assert report.failures == [] and keys_written(memory_store) == ["orders/%none/a"] * 2


def test_a_change_between_two_long_tenants_moves_between_their_hashed_folders(memory_store: MemoryStore) -> None:
    old, new = {"S": "x" * 300}, {"S": "x" * 299 + "y"}
    change = record("MODIFY", A, new={**A, "tenant": new}, old={**A, "tenant": old}, seq=2)
    report = capture(memory_store).process([put(A, {"tenant": old}, seq=1), change])
    assert report.failures == []
    old_folder, new_folder = k.tenant_segment(old), k.tenant_segment(new)
    assert old_folder != new_folder and old_folder.startswith("%md5-")
    assert memory_store.get(f"orders/{new_folder}/a").metadata["event-name"] == "MODIFY"
    assert next(iter(memory_store.list_versions(f"orders/{old_folder}/a"))).is_delete_marker


@pytest.mark.parametrize("tenant", ODD_TENANTS[:3])
def test_a_full_backup_names_odd_tenants_as_the_stream_does(tenant: dict[str, Any]) -> None:
    namer = k.ItemNamer("", "orders", True, SCHEMA)
    writer = ImageWriter(MemoryStore(), namer, SCHEMA, "tenant")
    assert writer.object_key({**A, "tenant": tenant})[0] == "orders/%none/a"


def test_our_versions_record_the_tenant_attribute_and_readers_hold_them_to_it(memory_store: MemoryStore) -> None:
    """A tenant folder of one of our versions is taken only when it is the segment our writer computes
    from the recorded attribute; a version written without one takes no tenant folder (docs/format.md,
    "Which objects a reader takes as a table's")."""
    capture(memory_store).process([put(A, {"tenant": {"S": "acme"}, "kind": {"S": "beta"}})])
    (row,) = memory_store.list_versions("orders/")
    meta = vm.VersionMeta.from_s3(memory_store.head(row.key, row.version_id).metadata)
    assert row.key == "orders/acme/a" and meta is not None and meta.tenancy == vm.Tenancy("tenant")
    image = {**A, "tenant": {"S": "acme"}, "kind": {"S": "beta"}}
    folders = ["orders/"]
    assert al.placement("orders/acme/a", folders, A, image, SCHEMA, meta.tenancy) is not None
    # another attribute's value is no tenant of ours (it was, without the record: the fallback)
    assert al.placement("orders/beta/a", folders, A, image, SCHEMA, meta.tenancy) is None
    assert al.placement("orders/beta/a", folders, A, image, SCHEMA, None) is not None
    assert al.placement("orders/a", folders, A, image, SCHEMA, meta.tenancy) is None
    # written without a tenant attribute: no tenant folder at all
    assert al.placement("orders/beta/a", folders, A, image, SCHEMA, vm.Tenancy(None)) is None
    assert al.placement("orders/a", folders, A, image, SCHEMA, vm.Tenancy(None)) is not None
    # a removal has no image: any segment of a writer with a tenant attribute
    assert al.placement("orders/old/a", folders, A, None, SCHEMA, meta.tenancy) is not None
    assert al.placement("orders/old/a", folders, A, None, SCHEMA, vm.Tenancy(None)) is None
