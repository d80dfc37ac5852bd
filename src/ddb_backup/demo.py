"""The demo: capture for real on the embedded emulator, then show the bucket it wrote.

A table with a stream and a versioned bucket on moto; a few writes, updates and deletes; the
stream records read with GetRecords and handed to the Lambda handler in Lambda's event shape;
then the bucket's layout: object names, versions, event names and times.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ddb_backup import handler as lambda_handler
from ddb_backup import settings as env_names
from ddb_backup import version_meta as vm
from ddb_backup.aws import make_client
from ddb_backup.emulator import local_credentials, moto_server
from ddb_backup.records import lambda_record
from ddb_backup.store.s3 import S3Store

TABLE = "demo-orders"
BUCKET = "demo-backups"
PREFIX = "backups"

Printer = Callable[[str], None]


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def create_table(dynamodb: Any, table: str) -> str:
    """A table keyed by ``pk`` (S) and ``sk`` (N) with a NEW_AND_OLD_IMAGES stream; returns the stream ARN."""
    answer = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(answer["TableDescription"]["LatestStreamArn"])


def create_bucket(s3: Any, bucket: str) -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def workload(dynamodb: Any, table: str) -> None:
    """Inserts, an update, a delete, and a key that needs escaping in plain-text names."""
    put = dynamodb.put_item
    put(TableName=table, Item={"pk": {"S": "customer#1"}, "sk": {"N": "1"}, "amount": {"N": "10"}})
    put(TableName=table, Item={"pk": {"S": "customer#2"}, "sk": {"N": "1.0"}, "amount": {"N": "25"}})
    put(TableName=table, Item={"pk": {"S": "a/b/../c"}, "sk": {"N": "7"}, "amount": {"N": "1"}})
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": "customer#1"}, "sk": {"N": "1"}},
        UpdateExpression="SET amount = :t",
        ExpressionAttributeValues={":t": {"N": "12"}},
    )
    dynamodb.delete_item(TableName=table, Key={"pk": {"S": "customer#2"}, "sk": {"N": "1"}})


def read_stream(streams: Any, stream_arn: str, region: str) -> list[dict[str, Any]]:
    """Every record of every shard, from the start, in Lambda's event shape."""
    records: list[dict[str, Any]] = []
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += [lambda_record(record, stream_arn, region) for record in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def bucket_layout(store: S3Store, prefix: str) -> list[tuple[str, str, str, str, str]]:
    """(object key, version, event, event time, S3 write time) for every version, keys in order."""
    rows = []
    for entry in store.list_versions(prefix):
        if entry.is_delete_marker:
            rows.append((entry.key, entry.version_id[:8], "(delete marker)", "", entry.last_modified.isoformat()))
            continue
        meta = vm.VersionMeta.from_s3(store.head(entry.key, entry.version_id).metadata)
        event = "?" if meta is None else meta.event_name + (f" ({meta.removed_by})" if meta.removed_by else "")
        when = "" if meta is None else vm.epoch_to_iso(meta.event_time)
        rows.append((entry.key, entry.version_id[:8], event, when, entry.last_modified.isoformat()))
    return rows


def run_capture_demo(echo: Printer = print, *, plain_text: bool = True) -> int:
    """Run the demo; returns the number of versions written."""
    with local_credentials(), moto_server() as url, environment({"AWS_ENDPOINT_URL": url}):
        region = os.environ["AWS_DEFAULT_REGION"]
        dynamodb, s3, streams = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
        echo(f"emulator: moto on {url}")
        stream_arn = create_table(dynamodb, TABLE)
        create_bucket(s3, BUCKET)
        workload(dynamodb, TABLE)
        records = read_stream(streams, stream_arn, region)
        echo(f"stream: {len(records)} records read with GetRecords")
        settings = {
            env_names.BACKUP_BUCKET: BUCKET,
            env_names.BACKUP_PREFIX: PREFIX,
            env_names.PLAIN_TEXT_KEY_AS_FILENAME: "true" if plain_text else "false",
        }
        with environment(settings):
            lambda_handler.reset_runtime()
            response = lambda_handler.handler({"Records": records}, None)
            lambda_handler.reset_runtime()
        failures = response["batchItemFailures"]
        echo(f"handler: {len(records) - len(failures)} backed up, {len(failures)} failed")
        rows = bucket_layout(S3Store(s3, BUCKET), PREFIX + "/")
        for key, version, event, event_time, written in rows:
            echo(f"  {key:<44} {version:<9} {event:<16} event {event_time:<24} written {written}")
        if failures:
            raise RuntimeError(f"the handler failed records: {failures}")
        return len(rows)
