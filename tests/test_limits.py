"""DynamoDB's limits meet S3's: 400 KB items, 2048/1024-byte keys, 2 KB of metadata."""

from __future__ import annotations

import json

import pytest

from builders import put, remove
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.store.memory import MemoryStore

SCHEMA = k.KeySchema("pk", "sk")
LONGEST = {"pk": {"S": "h" * 2048}, "sk": {"S": "r" * 1024}}  # DynamoDB's largest hash and range keys
ITEM_LIMIT = 400 * 1024


def s3_metadata_bytes(metadata: dict[str, str]) -> int:
    """S3's measure: UTF-8 bytes of every name and value (we count names without ``x-amz-meta-``)."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in metadata.items())


def newest(store: MemoryStore) -> tuple[str, bytes, dict[str, str]]:
    (row,) = [r for r in store.list_versions("") if r.is_latest]
    got = store.get(row.key)
    return row.key, got.body, dict(got.metadata)


@pytest.mark.parametrize("plain_text", [False, True])
def test_a_key_at_dynamodbs_limits_is_backed_up_under_its_md5_name(plain_text: bool) -> None:
    # GIVEN an item with a 2048-byte hash key and a 1024-byte range key
    store = MemoryStore()
    engine = Capture(store, CaptureSettings(plain_text=plain_text), lambda table: SCHEMA)
    # WHEN it is inserted, then removed
    report = engine.process([put(LONGEST, {"v": {"S": "x"}}, seq=1), remove(LONGEST, seq=2)])
    # THEN both land under the MD5 name (a plain-text name would pass S3's 1,024-byte key limit; plain-text
    # mode marks it "%md5-"), the metadata stays within S3's 2 KB by leaving out the key, and the image
    # still holds the key
    assert report.failures == [] and report.written == 2
    name = "orders/" + ("%md5-" if plain_text else "") + k.md5_object_name(LONGEST)
    versions = [store.get(name, row.version_id) for row in store.list_versions(name) if not row.is_delete_marker]
    tombstone, image = versions
    assert json.loads(image.body) == {**LONGEST, "v": {"S": "x"}}
    for version in versions:
        assert s3_metadata_bytes(dict(version.metadata)) <= vm.MAX_METADATA_BYTES
        assert vm.KEY not in version.metadata
    assert tombstone.metadata[vm.EVENT_NAME] == "REMOVE" and tombstone.body == b""


def test_the_key_stays_in_the_metadata_while_it_fits() -> None:
    meta = vm.VersionMeta("INSERT", 1_764_000_000, "1" * 21, "e" * 32, key={"pk": {"S": ""}})
    room = vm.MAX_METADATA_BYTES - s3_metadata_bytes(meta.to_s3())
    fits = vm.VersionMeta("INSERT", 1_764_000_000, "1" * 21, "e" * 32, key={"pk": {"S": "a" * room}})
    too_big = vm.VersionMeta("INSERT", 1_764_000_000, "1" * 21, "e" * 32, key={"pk": {"S": "a" * (room + 1)}})
    assert s3_metadata_bytes(fits.to_s3()) == vm.MAX_METADATA_BYTES and vm.KEY in fits.to_s3()
    assert vm.KEY not in too_big.to_s3()
    unicode_key = vm.VersionMeta("INSERT", 1, key={"pk": {"S": "日" * 300}}).to_s3()  # \\uXXXX: 6 bytes each
    assert s3_metadata_bytes(unicode_key) <= vm.MAX_METADATA_BYTES and unicode_key[vm.KEY].isascii()


def test_an_item_at_the_400_kb_limit_is_written_byte_for_byte() -> None:
    keys = {"pk": {"S": "big"}, "sk": {"N": "1"}}
    blob = "é" * ((ITEM_LIMIT - 100) // 2)  # two UTF-8 bytes each: the item is just under 400 KB
    store = MemoryStore()
    report = Capture(store, CaptureSettings()).process([put(keys, {"blob": {"S": blob}}, seq=1)])
    assert report.failures == []
    _, body, _ = newest(store)
    assert len(body) > ITEM_LIMIT - 100 and json.loads(body) == {**keys, "blob": {"S": blob}}
