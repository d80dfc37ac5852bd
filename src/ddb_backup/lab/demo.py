"""The demo: the whole loop on the embedded emulator, checked.

On moto's HTTP server (127.0.0.1): a table whose first rows predate its stream, a versioned bucket,
a full backup of those rows, a workload of inserts, updates and deletes over several seconds (the
table's exact contents noted at three moments), the stream runner backing up the stream (after all
three moments, so S3's clock says every change came "later": the case the original tool got
wrong), then a restore to each moment into a new table, compared with what the table held then.
With ``chaos``, S3 requests fail at random and DynamoDB throttles, and nothing may be lost.
"""

from __future__ import annotations

import logging
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddb_backup.aws.clients import make_client
from ddb_backup.capture.batch_response import capture_handler
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.full_backup import FullBackupOptions, run_full_backup
from ddb_backup.capture.key_schema_cache import KeySchemaCache
from ddb_backup.capture.records import lambda_record
from ddb_backup.capture.stream_checkpoint import FileCheckpoints
from ddb_backup.capture.stream_runner import RunnerOptions, RunSummary, StreamRunner
from ddb_backup.format import keys as k
from ddb_backup.lab.emulator import environment, local_credentials, moto_server, reset
from ddb_backup.lab.faults import FaultyDynamoDB, FaultyStore
from ddb_backup.restore.execute import RestoreOptions, restore
from ddb_backup.store import ObjectStore
from ddb_backup.store.retry import RetryingStore
from ddb_backup.store.s3 import S3Store

TABLE = "demo-orders"
BUCKET = "demo-backups"
PREFIX = "backups"
KEY_SCHEMA = k.KeySchema("pk", "sk")
SEED_ROWS = 40
PHASES = 3
OPS_PER_PHASE = 40
CHAOS_S3_FAULTS = 0.10
CHAOS_THROTTLING = 0.30

Printer = Callable[[str], None]
Snapshot = dict[str, dict[str, Any]]  # canonical key JSON -> item (boto3's typed form)


@dataclass(frozen=True)
class PointCheck:
    """One restore of the demo and its verdict."""

    label: str
    at: float
    expected: int  # items the table held at that moment
    restored: int  # items the restored table holds
    versions: int  # versions in the bucket (the history restore chose from)
    metadata_reads: int
    seconds: float
    match: bool


def create_table(dynamodb: Any, table: str, *, stream: bool = True) -> str:
    """A table keyed by ``pk`` (S) and ``sk`` (N), with a NEW_AND_OLD_IMAGES stream unless told not;
    returns the stream ARN (empty without a stream)."""
    spec = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"} if stream else {"StreamEnabled": False}
    answer = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification=spec,
    )
    return str(answer["TableDescription"].get("LatestStreamArn", ""))


def enable_stream(dynamodb: Any, table: str) -> str:
    answer = dynamodb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    return str(answer["TableDescription"]["LatestStreamArn"])


def create_bucket(s3: Any, bucket: str) -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def read_stream(streams: Any, stream_arn: str, region: str) -> list[dict[str, Any]]:
    """Every record of every shard, from the start, in Lambda's event shape (a simple reader for tests;
    the stream runner is the real one)."""
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += [lambda_record(record, stream_arn, region) for record in page["Records"]]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def scan_table(dynamodb: Any, table: str) -> Snapshot:
    """The whole table, keyed by canonical key."""
    items: Snapshot = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            items[k.key_json({name: item[name] for name in KEY_SCHEMA.attribute_names})] = item
    return items


class Workload:
    """Random inserts, updates and deletes over a small key space, seeded."""

    def __init__(self, dynamodb: Any, table: str, seed: int) -> None:
        self.dynamodb, self.table = dynamodb, table
        self.random = random.Random(seed)
        self.live: list[dict[str, Any]] = []
        self.serial = 0

    def insert(self, note: str) -> None:
        self.serial += 1
        key = {"pk": {"S": f"customer#{self.serial % 17}"}, "sk": {"N": str(self.serial)}}
        item: dict[str, Any] = {**key, "amount": {"N": str(self.random.randint(1, 999))}, "note": {"S": note}}
        if self.random.random() < 0.2:
            item["tags"] = {"SS": sorted({self.random.choice("abcdef") for _ in range(3)})}
        self.dynamodb.put_item(TableName=self.table, Item=item)
        self.live.append(key)

    def step(self) -> None:
        roll = self.random.random()
        if not self.live or roll < 0.4:
            self.insert("inserted")
        elif roll < 0.75:
            key = self.random.choice(self.live)
            self.dynamodb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET amount = :a, note = :n",
                ExpressionAttributeValues={":a": {"N": str(self.random.randint(1, 999))}, ":n": {"S": "updated"}},
            )
        else:
            key = self.live.pop(self.random.randrange(len(self.live)))
            self.dynamodb.delete_item(TableName=self.table, Key=key)


def note_moment(dynamodb: Any, table: str) -> tuple[float, Snapshot]:
    """A moment clear of any write (no change shares it) and the table's contents at it."""
    time.sleep(0.3)
    moment = time.time()
    snapshot = scan_table(dynamodb, table)
    time.sleep(0.3)
    return moment, snapshot


def run_stream(streams: Any, stream_arn: str, store: ObjectStore, dynamodb: Any, checkpoint: Path) -> RunSummary:
    """The stream runner over the whole stream until it is idle (failed records are retried quietly:
    the summary counts them)."""
    capture = Capture(store, CaptureSettings(prefix=PREFIX, plain_text=True), KeySchemaCache(dynamodb).lookup)
    runner = StreamRunner(
        streams,
        stream_arn,
        capture_handler(capture),
        FileCheckpoints(checkpoint),
        RunnerOptions(batch_size=25, until_idle=True, poll_interval=0.05, retry_base=0.05, max_batch_attempts=50),
        stop=threading.Event(),
    )
    capture_log = logging.getLogger("ddb_backup.capture.engine")
    level = capture_log.level
    capture_log.setLevel(logging.CRITICAL)
    try:
        return runner.run()
    finally:
        capture_log.setLevel(level)
        capture.close()


def count_versions(store: ObjectStore) -> int:
    return sum(1 for _ in store.list_versions(k.table_prefix(PREFIX, TABLE)))


def check_point(
    label: str, at: float, expected: Snapshot, store: ObjectStore, dynamodb: Any, versions: int, work: Path
) -> PointCheck:
    target = f"{TABLE}-{label}"
    options = RestoreOptions(
        bucket=BUCKET, source=TABLE, target=target, at=at, prefix=PREFIX, workers=8, checkpoint=work / f"{target}.json"
    )
    started = time.monotonic()
    summary = restore(options, store, dynamodb, now=lambda: at + 60)
    seconds = time.monotonic() - started
    restored = scan_table(dynamodb, target)
    return PointCheck(
        label, at, len(expected), len(restored), versions, summary.metadata_reads, seconds, restored == expected
    )


def run_demo(echo: Printer = print, *, chaos: bool = False, seed: int = 7) -> list[PointCheck]:
    """Run the whole demo; one ``PointCheck`` per restored moment."""
    with (
        local_credentials(),
        moto_server() as url,
        environment({"AWS_ENDPOINT_URL": url}),
        tempfile.TemporaryDirectory() as work,
    ):
        reset(url)  # moto keeps its state per process: start from nothing
        dynamodb, s3, streams = (make_client(name) for name in ("dynamodb", "s3", "dynamodbstreams"))
        echo(f"emulator: moto on {url}{'; chaos: S3 faults 10%, DynamoDB throttling 30%' if chaos else ''}")
        plain: ObjectStore = S3Store(s3, BUCKET)
        store: ObjectStore = FaultyStore.with_fault_rate(plain, CHAOS_S3_FAULTS, seed=seed) if chaos else plain
        reader = RetryingStore(store)
        writer = (
            FaultyDynamoDB(
                dynamodb, throttle_rate=CHAOS_THROTTLING / 2, unprocessed_rate=CHAOS_THROTTLING / 2, seed=seed
            )
            if chaos
            else dynamodb
        )
        create_bucket(s3, BUCKET)
        create_table(dynamodb, TABLE, stream=False)
        workload = Workload(dynamodb, TABLE, seed)
        for _ in range(SEED_ROWS):
            workload.insert("before the stream")
        stream_arn = enable_stream(dynamodb, TABLE)
        full = run_full_backup(dynamodb, plain, BUCKET, TABLE, FullBackupOptions(prefix=PREFIX, plain_text=True))
        echo(f"full backup: {full.written} rows that predate the stream")
        moments = []
        for phase in range(PHASES):
            for _ in range(OPS_PER_PHASE):
                workload.step()
            moments.append((f"t{phase + 1}", *note_moment(dynamodb, TABLE)))
        echo(f"workload: {PHASES} phases of {OPS_PER_PHASE} inserts, updates and deletes")
        run = run_stream(streams, stream_arn, store, dynamodb, Path(work) / "runner.json")
        versions = count_versions(plain)
        echo(
            f"stream runner: {run.records} records backed up after all three moments "
            f"({run.failed_batches} batches retried); {versions} versions in the bucket"
        )
        checks = [
            check_point(label, at, snapshot, reader, writer, versions, Path(work)) for label, at, snapshot in moments
        ]
        if isinstance(store, FaultyStore) and isinstance(writer, FaultyDynamoDB):
            echo(f"chaos: {store.injected} S3 faults and {writer.injected} DynamoDB throttles injected")
        return checks
