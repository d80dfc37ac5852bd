"""Capture: one Lambda batch through ``Capture``, in parallel against one record at a time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from benchmarks.boto_fake import sleeping_s3_client
from benchmarks.fakes import CountingStore
from benchmarks.report import Figure
from ddb_backup.aws.clients import make_client
from ddb_backup.capture.engine import DEFAULT_WORKERS, Capture, CaptureSettings
from ddb_backup.lab.emulator import local_credentials, moto_server
from ddb_backup.store import ObjectStore
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.s3 import S3Store

GOAL_RECORDS_PER_S = 1000
MAX_IN_FLIGHT = 64
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-27T00:00:00.000"


def stream_batch(records: int = 1000, items: int = 250, start_sequence: int = 1) -> list[dict[str, Any]]:
    """``records`` stream records over ``items`` items, as Lambda delivers them: each item inserted,
    then modified; every tenth item's last record is a REMOVE (a tombstone and a delete marker)."""
    per_item = records // items
    batch = []
    for step in range(per_item):
        for item in range(items):
            sequence = start_sequence + step * items + item
            last = step == per_item - 1
            name = "INSERT" if step == 0 else ("REMOVE" if last and item % 10 == 0 else "MODIFY")
            batch.append(_record(name, item, step, sequence))
    return batch


def baseline_batch(records: int, items: int) -> list[dict[str, Any]]:
    """A quarter of the batch, same shape, for the one-at-a-time baseline (its rate per record is the same;
    the whole batch would take 20 s at 20 ms per request)."""
    return stream_batch(max(1, records // 4), max(1, items // 4))


def _record(name: str, item: int, step: int, sequence: int) -> dict[str, Any]:
    keys = {"pk": {"S": f"customer#{item:05d}"}, "sk": {"N": str(item % 7)}}
    image = {**keys, "status": {"S": "open"}, "amount": {"N": str(step * 10 + 1)}, "note": {"S": "n" * 300}}
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": 1_764_000_000.0 + sequence / 1000,
        "Keys": keys,
        "SequenceNumber": str(sequence),
        "SizeBytes": 400,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if name != "REMOVE":
        dynamodb["NewImage"] = image
    if name != "INSERT":
        dynamodb["OldImage"] = image
    return {
        "eventID": f"ev-{sequence}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": TABLE_ARN,
    }


@dataclass(frozen=True)
class Run:
    records: int
    seconds: float
    in_flight: int
    requests: int

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def run_capture(store: ObjectStore, batch: list[dict[str, Any]], workers: int) -> Run:
    """One batch through a fresh ``Capture`` (its thread pool started inside the timing)."""
    counted = CountingStore(store)
    capture = Capture(counted, CaptureSettings(prefix="bench", workers=workers))
    started = time.perf_counter()
    report = capture.process(batch)
    seconds = time.perf_counter() - started
    capture.close()
    if report.failures or report.written != len(batch):
        raise AssertionError(f"capture failed: {report.errors[:3]}")
    return Run(len(batch), seconds, counted.flight.most, counted.flight.total)


def bench_capture(latency: float = 0.02, records: int = 1000, items: int = 250) -> list[Figure]:
    """Our code at scale: the in-memory store with ``latency`` per request."""
    batch = stream_batch(records, items)
    parallel = run_capture(MemoryStore(latency=latency), batch, DEFAULT_WORKERS)
    sequential = run_capture(MemoryStore(latency=latency), baseline_batch(records, items), 1)
    if parallel.in_flight > MAX_IN_FLIGHT:
        raise AssertionError(f"{parallel.in_flight} requests in flight, more than {MAX_IN_FLIGHT}")
    return [_rate_figure("capture, in-memory S3", latency, parallel, sequential), _in_flight_figure(parallel)]


def bench_capture_boto3(latency: float = 0.02, records: int = 1000, items: int = 250) -> list[Figure]:
    """The same batch through ``S3Store`` and a real boto3 client whose network is a sleep."""
    batch = stream_batch(records, items)
    with local_credentials():
        parallel = run_capture(S3Store(sleeping_s3_client(latency), "bench"), batch, DEFAULT_WORKERS)
        sequential = run_capture(S3Store(sleeping_s3_client(latency), "bench"), baseline_batch(records, items), 1)
        lean = run_capture(S3Store(sleeping_s3_client(latency, lean=True), "bench"), batch, DEFAULT_WORKERS)
    return [
        _rate_figure("capture, boto3 S3Store (network = sleep)", latency, parallel, sequential),
        Figure(
            "capture, boto3 S3Store, client without parameter validation and checksums (not the default)",
            lean.rate,
            "records/s",
            baseline=parallel.rate,
            baseline_label="the default client, same run",
            goal_text=f">= {GOAL_RECORDS_PER_S:,} records/s",
            goal=lambda figure: figure.value >= GOAL_RECORDS_PER_S,
        ),
    ]


def bench_capture_moto(records: int = 200, items: int = 50) -> list[Figure]:
    """Realism: a smaller batch through moto's HTTP server (moto's own speed dominates; no goal)."""
    batch = stream_batch(records, items)
    with local_credentials(), moto_server() as url:
        client = make_client("s3", endpoint_url=url, region="us-east-1")
        client.create_bucket(Bucket="bench")
        client.put_bucket_versioning(Bucket="bench", VersioningConfiguration={"Status": "Enabled"})
        parallel = run_capture(S3Store(client, "bench"), batch, DEFAULT_WORKERS)
        sequential = run_capture(S3Store(client, "bench"), stream_batch(records, items, 10_000), 1)
    return [
        Figure(
            f"capture through moto's HTTP server ({records} records, {items} items)",
            parallel.rate,
            "records/s",
            baseline=sequential.rate,
            baseline_label="one record at a time",
            notes=(f"{parallel.requests} requests; at most {parallel.in_flight} in flight",),
        )
    ]


def _rate_figure(name: str, latency: float, parallel: Run, sequential: Run) -> Figure:
    return Figure(
        f"{name}: {parallel.records} records, {parallel.requests} requests, {latency * 1000:.0f} ms each",
        parallel.rate,
        "records/s",
        baseline=sequential.rate,
        baseline_label="one record at a time",
        goal_text=f">= {GOAL_RECORDS_PER_S:,} records/s",
        goal=lambda figure: figure.value >= GOAL_RECORDS_PER_S,
        notes=(
            f"batch took {parallel.seconds:.3f} s; "
            f"one at a time: {sequential.records} records of the same shape in {sequential.seconds:.2f} s",
        ),
    )


def _in_flight_figure(parallel: Run) -> Figure:
    return Figure(
        "capture, most requests in flight",
        parallel.in_flight,
        "requests",
        goal_text=f"<= {MAX_IN_FLIGHT}",
        goal=lambda figure: figure.value <= MAX_IN_FLIGHT,
    )
