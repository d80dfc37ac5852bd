"""End to end through moto's HTTP server: a real table, real GetRecords, the handler, the bucket."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from ddb_backup import handler as h
from ddb_backup.aws.clients import make_client
from ddb_backup.format import version_meta as vm
from ddb_backup.lab.demo import create_bucket, create_table, read_stream
from ddb_backup.store.s3 import S3Store

pytestmark = pytest.mark.e2e


def test_stream_records_from_a_real_table_land_in_the_bucket(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a table with a stream and a versioned bucket on moto's server
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    ddb, s3, streams = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
    stream_arn = create_table(ddb, "live")
    create_bucket(s3, "bk-e2e")
    # WHEN items are written, changed and deleted, and the stream's records go to the handler
    ddb.put_item(TableName="live", Item={"pk": {"S": "p/1"}, "sk": {"N": "1"}, "v": {"S": "one"}})
    ddb.put_item(TableName="live", Item={"pk": {"S": "p/1"}, "sk": {"N": "1"}, "v": {"S": "two"}})
    ddb.put_item(TableName="live", Item={"pk": {"S": "q"}, "sk": {"N": "2"}, "bin": {"B": b"\x00\x01"}})
    ddb.delete_item(TableName="live", Key={"pk": {"S": "q"}, "sk": {"N": "2.0"}})
    records = read_stream(streams, stream_arn, os.environ["AWS_DEFAULT_REGION"])
    for name, value in {
        "BackupBucket": "bk-e2e",
        "BackupPrefix": "pre",
        "PlainTextKeyAsFilename": "true",
    }.items():
        monkeypatch.setenv(name, value)
    h.reset_runtime()
    try:
        response = h.handler({"Records": records}, None)
    finally:
        h.reset_runtime()
    # THEN every change is a version with its event's identity, in order
    assert response == {"batchItemFailures": []}
    store = S3Store(s3, "bk-e2e")
    rows = list(store.list_versions("pre/"))
    assert [(row.key, row.is_delete_marker) for row in rows] == [
        ("pre/live/p%2F1 | 1", False),
        ("pre/live/p%2F1 | 1", False),
        ("pre/live/q | 2", True),
        ("pre/live/q | 2", False),
        ("pre/live/q | 2", False),
    ]
    metas: list[Any] = [
        vm.VersionMeta.from_s3(store.head(r.key, r.version_id).metadata) for r in rows if not r.is_delete_marker
    ]
    assert [m.event_name for m in metas] == ["MODIFY", "INSERT", "REMOVE", "INSERT"]
    assert [m.sequence_number for m in metas] == [
        r["dynamodb"]["SequenceNumber"] for r in (records[1], records[0], records[3], records[2])
    ]
    assert json.loads(store.get("pre/live/p%2F1 | 1").body)["v"] == {"S": "two"}
    assert json.loads(store.get("pre/live/q | 2", rows[-1].version_id).body)["bin"] == {"B": "AAE="}
