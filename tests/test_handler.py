"""The Lambda entry point against moto (mock_aws): settings, layouts, the published sample event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from builders import event, load_event, put, remove
from ddb_backup import handler as h
from ddb_backup.format import keys as k
from ddb_backup.settings import Settings, SettingsError, parse_bool
from ddb_backup.store.s3 import S3Store

BUCKET = "backups"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setenv("BackupBucket", BUCKET)
        for name in ("BackupPrefix", "PlainTextKeyAsFilename", "MultiTenancyColumn"):
            monkeypatch.delenv(name, raising=False)
        h.reset_runtime()
        yield s3
        h.reset_runtime()


def versions(s3: Any, prefix: str = "") -> list[dict[str, Any]]:
    answer = s3.list_object_versions(Bucket=BUCKET, Prefix=prefix)
    rows = answer.get("Versions", []) + answer.get("DeleteMarkers", [])
    return sorted(rows, key=lambda row: (row["Key"], row["LastModified"]))


def test_the_published_sample_event_is_backed_up(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BackupPrefix", "/nightly/")
    response = h.handler(load_event("aws_sample_insert_modify_remove.json"), None)
    assert response == {"batchItemFailures": []}
    name = k.md5_object_name({"Id": {"N": "101"}})
    key = f"nightly/ExampleTableWithStream/{name}"
    rows = list(reversed(list(S3Store(aws, BUCKET).list_versions(""))))  # oldest first
    assert {row.key for row in rows} == {key}
    assert [row.is_delete_marker for row in rows] == [False, False, False, True]  # + tombstone, marker
    events = []
    for row in rows[:3]:
        head = aws.head_object(Bucket=BUCKET, Key=key, VersionId=row.version_id)
        events.append((head["Metadata"]["event-name"], head["Metadata"]["sequence-number"]))
    assert events == [("INSERT", "111"), ("MODIFY", "222"), ("REMOVE", "333")]
    first_put = aws.get_object(Bucket=BUCKET, Key=key, VersionId=rows[0].version_id)
    assert first_put["ContentType"] == "application/json"
    assert json.loads(first_put["Body"].read()) == {"Message": {"S": "New item!"}, "Id": {"N": "101"}}


def test_plain_text_names_use_the_key_schema_looked_up_once(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "z", "KeyType": "HASH"}, {"AttributeName": "a", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "z", "AttributeType": "S"},
            {"AttributeName": "a", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("PlainTextKeyAsFilename", "yes")
    keys = {"a": {"N": "2.50"}, "z": {"S": "x/y"}}
    h.handler(event(put(keys, seq=1), remove(keys, seq=2)), None)
    assert {row["Key"] for row in versions(aws)} == {"orders/x%2Fy | 2.5"}


def test_multi_tenant_layout(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MultiTenancyColumn", "org")
    keys = {"id": {"S": "1"}}
    h.handler(event(put(keys, {"org": {"S": "acme"}}, seq=1)), None)
    assert [row["Key"] for row in versions(aws)] == [f"orders/acme/{k.md5_object_name(keys)}"]


def test_a_bucket_without_versioning_is_refused_naming_the_fix(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.create_bucket(Bucket="plain")
    monkeypatch.setenv("BackupBucket", "plain")
    with pytest.raises(SettingsError, match="put-bucket-versioning --bucket plain"):
        h.handler(event(put({"id": {"S": "1"}}, seq=1)), None)


@pytest.mark.parametrize("bad", [None, [], "text", {"records": []}, {"Records": "x"}])
def test_events_that_are_not_stream_batches_are_refused_clearly(aws: Any, bad: Any) -> None:
    with pytest.raises(h.BadEvent, match="not a DynamoDB Streams batch"):
        h.handler(bad, None)


def test_settings_are_read_once_per_container(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    h.handler(event(), None)
    monkeypatch.setenv("BackupBucket", "elsewhere")
    h.handler(event(), None)
    assert h.runtime().settings.bucket == BUCKET


class TestSettings:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("true", True),
            ("TRUE", True),
            ("1", True),
            ("yes", True),
            ("false", False),
            ("0", False),
            ("no", False),
            ("", False),
            (None, False),
        ],
    )
    def test_booleans(self, text: str | None, value: bool) -> None:
        assert parse_bool("PlainTextKeyAsFilename", text) is value

    @pytest.mark.parametrize("text", ["ture", "2", "on?"])
    def test_other_words_are_not_booleans(self, text: str) -> None:
        with pytest.raises(SettingsError, match="PlainTextKeyAsFilename"):
            parse_bool("PlainTextKeyAsFilename", text)

    def test_bucket_is_required(self) -> None:
        with pytest.raises(SettingsError, match="BackupBucket is not set"):
            Settings.from_env({})

    def test_prefix_is_tidied_and_checked(self) -> None:
        assert Settings.from_env({"BackupBucket": "b", "BackupPrefix": "/a/b/"}).prefix == "a/b"
        with pytest.raises(SettingsError, match="BackupPrefix"):
            Settings.from_env({"BackupBucket": "b", "BackupPrefix": "a/../b"})

    @pytest.mark.parametrize("prefix", ["back\nups", "a\tb", "nul\x00", "del\x7f"])
    def test_a_prefix_with_a_control_character_is_refused(self, prefix: str) -> None:
        # S3's XML listings cannot carry it: every reader's listing of the folder would fail
        with pytest.raises(SettingsError, match="control character"):
            Settings.from_env({"BackupBucket": "b", "BackupPrefix": prefix})
