"""``history``: every version of one item, oldest first, with what changed."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from builders import put, record, remove
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.cli import cli
from ddb_backup.errors import UserError
from ddb_backup.format import keys as k
from ddb_backup.inspect.history import item_history, locate_item, parse_key
from ddb_backup.store.s3 import S3Store
from inspect_support import BUCKET, Clock, backed_up, create_table, memory_store, versioned_bucket

A = {"pk": {"S": "a"}}
T0 = 1_764_000_000.0


def test_every_change_is_listed_oldest_first_with_what_changed() -> None:
    # GIVEN an item inserted, modified, expired by TTL, and inserted again
    clock = Clock()
    store = memory_store(clock)
    backed_up(
        store,
        [
            put(A, {"n": {"N": "1"}}, at=T0, seq=1),
            put(A, {"n": {"N": "2"}, "tag": {"S": "x"}}, first=False, at=T0 + 10, seq=2),
            remove(A, {"n": {"N": "2"}, "tag": {"S": "x"}}, ttl=True, at=T0 + 20, seq=3),
            put(A, {"m": {"BOOL": True}}, at=T0 + 30, seq=4),
        ],
        clock=clock,
        lag=3.0,
    )
    object_key = locate_item(store, "", "orders", A)
    # WHEN its history is read
    entries = item_history(store, object_key)
    # THEN four changes; the TTL removal's delete marker is folded into it
    assert [e.event for e in entries] == ["insert", "modify", "ttl", "insert"]
    assert [e.sequence_number for e in entries] == ["1", "2", "3", "4"]
    assert [e.event_time for e in entries] == [T0, T0 + 10, T0 + 20, T0 + 30]
    assert all(e.lag == 3.0 for e in entries)
    assert entries[1].changes.as_dict() == {"added": ["tag"], "removed": [], "changed": ["n"]}
    assert entries[2].changes.removed == ["n", "pk", "tag"] and entries[2].delete_marker is not None
    assert entries[3].changes.added == ["m", "pk"]


def test_versions_of_the_original_tool_use_their_write_time() -> None:
    # GIVEN a bucket written by the original tool: bodies without metadata, and an S3 delete
    clock = Clock(T0)
    store = memory_store(clock)
    name = k.object_key_for("", "orders", k.md5_object_name(A))
    store.put(name, json.dumps({**A, "n": {"N": "1"}}).encode(), {})
    clock.now = T0 + 5
    store.put(name, json.dumps({**A, "n": {"N": "2"}}).encode(), {})
    clock.now = T0 + 9
    store.delete(name)
    # WHEN its history is read
    entries = item_history(store, name)
    # THEN the changes are told apart by their images, timed by S3
    assert [(e.event, e.writer, e.event_time) for e in entries] == [
        ("insert", "original-tool", T0),
        ("modify", "original-tool", T0 + 5),
        ("remove", "original-tool", T0 + 9),
    ]


def test_a_key_is_typed_or_plain_json_and_an_unknown_item_says_where_it_looked() -> None:
    assert parse_key('{"pk":"a","sk":1.50}') == {"pk": {"S": "a"}, "sk": {"N": "1.5"}}
    assert parse_key('{"pk":{"S":"a"}}') == {"pk": {"S": "a"}}
    with pytest.raises(UserError, match="not JSON"):
        parse_key("pk=a")
    with pytest.raises(UserError, match="no version of this item"):
        locate_item(memory_store(Clock()), "", "orders", {"pk": {"S": "zz"}})


@mock_aws
def test_history_command_on_s3_with_plain_text_names_and_tenants() -> None:
    # GIVEN a live table (its key schema) and a multi-tenant, plain-text backup on S3
    s3 = versioned_bucket()
    create_table(boto3.client("dynamodb", region_name="us-east-1"), range_key="sk")
    key = {"pk": {"S": "a/b"}, "sk": {"N": "1"}}
    image = {**key, "t": {"S": "acme"}}
    settings = CaptureSettings(prefix="p", plain_text=True, tenant_column="t")
    capture = Capture(S3Store(s3, BUCKET), settings, lambda _: k.KeySchema("pk", "sk"))
    capture.process([record("INSERT", key, new=image, at=T0, seq=7)])
    capture.process([record("MODIFY", key, new={**image, "v": {"N": "2"}}, old=image, at=T0 + 1, seq=8)])
    # WHEN history is asked for, with --json and without
    args = ["history", "--bucket", BUCKET, "--prefix", "p", "--table", "orders", "--tenant", "acme"]
    args += ["--key", '{"pk":"a/b","sk":1}']
    result = CliRunner().invoke(cli, [*args, "--json"])
    text = CliRunner().invoke(cli, args)
    # THEN the plain-text object under the tenant's folder is found and its two changes shown
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    assert data["object_key"] == "p/orders/acme/a%2Fb | 1"
    assert [v["event"] for v in data["versions"]] == ["insert", "modify"]
    assert data["versions"][1]["changes"]["added"] == ["v"]
    assert text.exit_code == 0 and "+v" in text.output and "modify" in text.output


def test_plain_text_names_use_the_saved_schema_when_the_table_is_gone() -> None:
    from moto import mock_aws

    from ddb_backup.cli.common import Aws
    from ddb_backup.cli.lookup import key_schema
    from ddb_backup.format.keys import KeySchema
    from ddb_backup.format.table_schema import save_schema
    from ddb_backup.store.memory import MemoryStore

    store = MemoryStore()
    described = {
        "TableName": "gone",
        "KeySchema": [{"AttributeName": "z", "KeyType": "HASH"}, {"AttributeName": "a", "KeyType": "RANGE"}],
        "AttributeDefinitions": [
            {"AttributeName": "z", "AttributeType": "S"},
            {"AttributeName": "a", "AttributeType": "N"},
        ],
    }
    save_schema(store, "p", described)
    with mock_aws():  # GIVEN no live table of that name
        assert key_schema(Aws(region="us-east-1"), "gone") is None
        assert key_schema(Aws(region="us-east-1"), "gone", store, "p") == KeySchema("z", "a")
