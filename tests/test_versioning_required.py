"""A write S3 keeps no version of fails loudly, naming the fix (issue 12.8; docs/format.md, "The bucket").

Versioning is checked at cold start; these are the writes after it, when versioning was suspended
while the function stayed warm: S3 then answers PutObject and DeleteObject with no ``VersionId`` (or
``null``) and the write replaced the object's null version instead of adding one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from builders import put, remove
from ddb_backup import handler as h
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.full_backup import ImageWriter
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import save_schema
from ddb_backup.store import StoreError, UnversionedWrite
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.s3 import S3Store

SECRET = {"pk": {"S": "secret-key-value"}}
SCHEMA = k.KeySchema("pk")
FIX = "put-bucket-versioning"


class MarkersWithoutVersions(MemoryStore):
    """Puts are versioned; delete markers come back without a version id."""

    def delete(self, key: str) -> str | None:
        super().delete(key)
        return None


def test_a_put_after_versioning_was_suspended_fails_the_record_naming_the_fix() -> None:
    # GIVEN a warm function that has already written with versioning on
    store = MemoryStore()
    engine = Capture(store, CaptureSettings(plain_text=True), lambda table: SCHEMA)
    assert engine.process([put(SECRET, seq=1)]).failures == []
    # WHEN versioning is suspended and the next change comes
    store.set_versioning(False)
    report = engine.process([put(SECRET, {"v": {"N": "2"}}, first=False, seq=2)])
    # THEN the record fails, so Lambda retries it until versioning is back, and the log says how
    assert report.failures == ["2"] and report.written == 0
    (error,) = report.errors
    assert FIX in error and "VersionId" in error and k.md5_object_name(SECRET) in error
    assert "secret-key-value" not in error
    # AND once versioning is enabled again, the retry adds the version
    store.set_versioning(True)
    assert engine.process([put(SECRET, {"v": {"N": "2"}}, first=False, seq=2)]).failures == []


def test_a_tombstone_without_a_version_fails_before_its_delete_marker() -> None:
    store = MemoryStore()
    engine = Capture(store, CaptureSettings())
    store.set_versioning(False)
    report = engine.process([remove(SECRET, seq=3)])
    assert report.failures == ["3"] and FIX in report.errors[0]
    assert not any(row.is_delete_marker for row in store.list_versions(""))


def test_a_delete_marker_without_a_version_fails_the_record() -> None:
    report = Capture(MarkersWithoutVersions(), CaptureSettings()).process([remove(SECRET, seq=4)])
    assert report.failures == ["4"] and FIX in report.errors[0]


def test_s3_answering_without_a_version_id_fails_the_record() -> None:
    # GIVEN S3 as botocore would hand it over: a PutObject answer with an ETag and no VersionId
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    for answer in ({"ETag": '"e"'}, {"ETag": '"e"', "VersionId": "null"}):
        stubber.add_response("list_object_versions", {"Versions": [], "IsTruncated": False})  # capture looks first
        stubber.add_response("put_object", answer)
    with stubber:
        engine = Capture(S3Store(client, "backups"), CaptureSettings())
        first = engine.process([put(SECRET, seq=5)])
        second = engine.process([put(SECRET, first=False, seq=6)])
    assert first.failures == ["5"] and second.failures == ["6"]
    assert FIX in first.errors[0] and FIX in second.errors[0]


def test_a_full_backup_write_without_a_version_fails() -> None:
    store = MemoryStore(versioning=False)
    writer = ImageWriter(store, k.ItemNamer("", "orders", False), SCHEMA, None)
    with pytest.raises(UnversionedWrite, match=FIX) as caught:
        writer.write(SECRET, 1_764_000_000.0)
    assert isinstance(caught.value, StoreError) and "secret-key-value" not in str(caught.value)


def test_a_schema_save_without_a_version_fails() -> None:
    table = {
        "TableName": "orders",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    }
    with pytest.raises(UnversionedWrite, match=FIX):
        save_schema(MemoryStore(versioning=False), "", {"Table": table})


@pytest.fixture
def warm_function_on_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="backups")
        s3.put_bucket_versioning(Bucket="backups", VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setenv("BackupBucket", "backups")
        for name in ("BackupPrefix", "PlainTextKeyAsFilename", "MultiTenancyColumn"):
            monkeypatch.delenv(name, raising=False)
        h.reset_runtime()
        yield s3
        h.reset_runtime()


def test_the_handler_notices_versioning_suspended_while_warm(warm_function_on_moto: Any) -> None:
    s3 = warm_function_on_moto
    assert h.handler({"Records": [put(SECRET, seq=7)]}, None)["batchItemFailures"] == []
    s3.put_bucket_versioning(Bucket="backups", VersioningConfiguration={"Status": "Suspended"})
    response = h.handler({"Records": [put(SECRET, first=False, seq=8)]}, None)
    assert response["batchItemFailures"] == [{"itemIdentifier": "8"}]


def test_the_memory_store_suspends_versioning_as_s3_does() -> None:
    # Versions with ids stay; writes while suspended share the one "null" version, which each replaces.
    store = MemoryStore()
    first = store.put("k", b"1", {}).version_id
    store.set_versioning(False)
    assert store.put("k", b"2", {}).version_id == "null" and store.put("k", b"3", {}).version_id == "null"
    assert [row.version_id for row in store.list_versions("k")] == ["null", first]
    assert store.get("k").body == b"3" and store.delete("k") == "null"
