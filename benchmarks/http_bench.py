"""Headline figures through real clients over real HTTP: the fake endpoint (``benchmarks.http_fake``) runs
in its own process on 127.0.0.1 and answers after 20 ms; our side is the real code with its real clients.

capture: 1,000-record batches over 250 items through the Lambda handler (``ddb_backup.handler.handler``,
cold start excluded), on the native S3 client and, in the same run, on plain boto3 (the baseline).
listing: CPU per 1,000-version ListObjectVersions page through boto3, botocore's timestamp parser
against ours (``ddb_backup.aws.timestamps``).
"""

from __future__ import annotations

import contextlib
import io
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from benchmarks.capture_bench import stream_batch
from benchmarks.http_fake import check, fake_endpoint, stats
from benchmarks.report import Figure
from benchmarks.restore_bench import SOURCE, saved_schema
from benchmarks.synthetic import History
from ddb_backup import handler as h
from ddb_backup.aws.clients import client_config, make_client
from ddb_backup.lab.emulator import environment
from ddb_backup.store.native import S3_CLIENT_ENV, NativeS3Store
from ddb_backup.store.s3 import S3Store

GOAL_RECORDS_PER_S = 1500
GOAL_CPU_MS = 0.6
GOAL_RESTORE_ITEMS_PER_S = 1500
ROWS = "ListObjectVersions rows"  # the fake's count of listing rows answered
CAPTURE_TABLE = {
    "TableName": "orders",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "N"},
    ],
    "TableStatus": "ACTIVE",
}


LOCAL = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


def _joined(values: Any) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


@dataclass(frozen=True)
class CaptureRun:
    records: int
    seconds: float
    cpu: float
    fake_cpu: float
    in_flight: int
    requests: int

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.records


def _invoke(batch: list[dict[str, Any]]) -> None:
    h.logger.setLevel("WARNING")
    with contextlib.redirect_stdout(io.StringIO()):  # Powertools' metrics
        answer = h.handler({"Records": batch}, None)
    if answer != {"batchItemFailures": []}:
        raise AssertionError(f"capture failed: {answer['batchItemFailures'][:3]}")


def capture_runs(url: str, backend: str, rounds: int, records: int, items: int, first: int) -> list[CaptureRun]:
    """``rounds + 1`` batches through one function on ``backend``, its cold start done by a small batch of
    other items: the first batch finds every item new to this container, so it looks in the bucket first
    (a ListObjectVersions per item, capture's replay guard); the next ``rounds`` are warm."""
    runs = []
    with environment({S3_CLIENT_ENV: backend}):
        h.reset_runtime()
        _invoke(stream_batch(8, 2, first))
        for round_number in range(rounds + 1):
            batch = stream_batch(records, items, first + (round_number + 1) * 10 * records)
            before = stats(url)
            started, cpu = time.perf_counter(), time.process_time()
            _invoke(batch)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            after = stats(url, reset_most=True)
            requests = sum(after["counts"].values()) - sum(before["counts"].values())
            runs.append(
                CaptureRun(records, seconds, cpu, after["cpu_s"] - before["cpu_s"], after["most_in_flight"], requests)
            )
        h.reset_runtime()
    return runs


def _median_run(runs: list[CaptureRun]) -> CaptureRun:
    return sorted(runs, key=lambda run: run.rate)[len(runs) // 2]


def bench_capture_http(latency: float = 0.02, records: int = 1000, items: int = 250, rounds: int = 3) -> list[Figure]:
    settings = {
        **LOCAL,
        "BackupBucket": "bench",
        "BackupPrefix": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    with (
        fake_endpoint(latency, tables={"orders": CAPTURE_TABLE}) as url,
        environment({**settings, "AWS_ENDPOINT_URL": url}),
    ):
        boto_first, *boto = capture_runs(url, "boto3", rounds, records, items, 1_000_000)
        native_first, *native = capture_runs(url, "native", rounds, records, items, 5_000_000)
    ours, base = _median_run(native), _median_run(boto)
    fake_share = max(run.fake_cpu / run.seconds for run in native + boto)
    return [
        Figure(
            f"capture over HTTP, the handler on the native S3 client: {records:,} records over {items} items, "
            f"{latency * 1000:.0f} ms per request (warm container, median of {rounds} batches)",
            ours.rate,
            "records/s",
            baseline=base.rate,
            baseline_label="the same handler on plain boto3, same run",
            goal_text=f">= {GOAL_RECORDS_PER_S:,} records/s",
            goal=lambda figure: figure.value >= GOAL_RECORDS_PER_S,
            notes=(
                "native runs: " + ", ".join(f"{run.rate:,.0f}" for run in native) + " records/s; "
                "boto3 runs: " + ", ".join(f"{run.rate:,.0f}" for run in boto),
                f"{ours.requests:,} requests per batch, at most {ours.in_flight} in flight (boto3: {base.in_flight})",
                f"the fake endpoint used at most {fake_share:.0%} of one core",
                f"first batch of a fresh container (a look per item, {native_first.requests:,} requests): "
                f"{native_first.rate:,.0f} records/s, {native_first.cpu_ms:.2f} ms CPU per record "
                f"(boto3: {boto_first.rate:,.0f} records/s, {boto_first.cpu_ms:.2f} ms)",
            ),
        ),
        Figure(
            "capture over HTTP, CPU per record (this process: handler, clients, all threads)",
            ours.cpu_ms,
            "ms",
            baseline=base.cpu_ms,
            baseline_label="plain boto3, same run",
            goal_text=f"<= {GOAL_CPU_MS} ms",
            goal=lambda figure: figure.value <= GOAL_CPU_MS,
            notes=(
                "runs: "
                + ", ".join(f"{run.cpu_ms:.2f}" for run in native)
                + " ms; boto3: "
                + ", ".join(f"{run.cpu_ms:.2f}" for run in boto),
            ),
        ),
    ]


def _listing_cpu(store: Any, prefix: str) -> tuple[float, int]:
    """CPU seconds (this process, every thread: the native client works in its own) per listing page of
    ``store.list_versions``, and the rows listed."""
    started = time.process_time()
    rows = sum(1 for _ in store.list_versions(prefix))
    return (time.process_time() - started) / max(1, -(-rows // 1000)), rows


def bench_listing_http(items: int = 4000, versions: int = 5, latency: float = 0.02, rounds: int = 3) -> list[Figure]:
    history = History(items=items, versions=versions)
    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    with fake_endpoint(latency, history) as url, environment(credentials):
        default = boto3.session.Session().client(
            "s3", endpoint_url=url, region_name="us-east-1", config=client_config()
        )
        ours = make_client("s3", endpoint_url=url, region="us-east-1")
        stores: dict[str, Any] = {"botocore": S3Store(default, "bench"), "boto3": S3Store(ours, "bench")}
        stores["native"] = NativeS3Store(ours, "bench")
        cpu: dict[str, list[float]] = {name: [] for name in stores}
        for _ in range(rounds):  # interleaved, so the machine's load hits each alike
            for name, store in stores.items():
                seconds, rows = _listing_cpu(store, history.prefix)
                if rows != items * versions:
                    raise AssertionError(f"{name} listed {rows} of {items * versions} versions")
                cpu[name].append(seconds)
    median = {name: statistics.median(values) * 1000 for name, values in cpu.items()}
    return [
        Figure(
            f"listing over HTTP: CPU per 1,000-version ListObjectVersions page ({items * versions:,} versions), "
            "the native store (awscrt, ElementTree)",
            median["native"],
            "ms",
            baseline=median["botocore"],
            baseline_label="boto3 with botocore's own timestamp parser",
            notes=(
                f"boto3 with our timestamp parser: {median['boto3']:.1f} ms",
                "runs (ms): "
                + "; ".join(f"{name} {', '.join(f'{v * 1000:.0f}' for v in values)}" for name, values in cpu.items()),
            ),
        )
    ]


@dataclass(frozen=True)
class RestoreRun:
    items: int
    seconds: float
    cpu: float
    fake_cpu: float
    requests: dict[str, int]
    processes: int = 1

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    def per_item(self) -> str:
        """Requests per item by kind (the listing's rows apart: see ``listed``)."""
        requests = sorted((name, count) for name, count in self.requests.items() if name != ROWS)
        return ", ".join(f"{name} {count / self.items:.3f}" for name, count in requests)

    def listed(self, versions: int) -> str:
        """Listing rows read against the bucket's versions (``versions`` per item)."""
        rows = self.requests.get(ROWS, 0)
        return f"the listing read {rows:,} rows, {rows / (self.items * versions):.2f}x the bucket's versions"


def restore_run(url: str, history: History, backend: str, target: str, processes: int = 1) -> RestoreRun:
    """``ddb-backup restore`` of the synthetic table as the CLI runs it (``cli.common.Aws``'s store and
    clients, ``--processes``: 0 two per core), on ``backend``, into a new table ``target`` on the fake
    DynamoDB; checked item by item. CPU: this process and its worker processes (reaped before it is read)."""
    from ddb_backup.cli.common import Aws
    from ddb_backup.cli.restore import WorkerClients
    from ddb_backup.restore import execute

    with environment({S3_CLIENT_ENV: backend}), tempfile.TemporaryDirectory(prefix="bench-restore-") as folder:
        aws = Aws(endpoint_url=url, region="us-east-1")
        options = execute.RestoreOptions(
            bucket="bench",
            source=SOURCE,
            target=target,
            at=history.at,
            prefix=history.prefix.removesuffix(f"{SOURCE}/").rstrip("/"),
            checkpoint=Path(folder) / "checkpoint",
            processes=processes,
        )
        clients = WorkerClients(aws, "bench", options.workers)
        store, dynamodb = clients()
        before = stats(url)
        started, cpu = time.perf_counter(), _cpu_with_children()
        summary = execute.restore(options, store, dynamodb, connect=clients)
        seconds, cpu = time.perf_counter() - started, _cpu_with_children() - cpu
        after = stats(url)
    result = check(url, target)
    if result != {"items": history.items, "wrong": 0} or summary.puts != history.items:
        raise AssertionError(f"restored table wrong: {result}, {summary.puts} puts for {history.items} items")
    requests = {name: after["counts"].get(name, 0) - before["counts"].get(name, 0) for name in after["counts"]}
    return RestoreRun(
        summary.puts,
        seconds,
        cpu,
        after["cpu_s"] - before["cpu_s"],
        {k: v for k, v in requests.items() if v},
        summary.processes,
    )


def _cpu_with_children() -> float:
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


def _run_note(label: str, run: RestoreRun, versions: int) -> str:
    return (
        f"{label}: {run.items:,} items in {run.seconds:.0f} s = {run.rate:,.0f} items/s on {run.processes} "
        f"process(es), {run.cpu:.0f} s of CPU ({run.cpu / run.seconds:.2f} cores, {1000 * run.cpu / run.items:.2f} "
        f"ms per item); requests per item: {run.per_item()}; {run.listed(versions)}"
    )


def bench_restore_http(
    items: int = 100_000,
    versions: int = 5,
    baseline_items: int = 10_000,
    one_process_items: int = 20_000,
    latency: float = 0.02,
) -> list[Figure]:
    """Restore end to end over HTTP: ours (native client, two processes per core), and in the same run the
    one-process path (native, on a subset) and plain boto3 on one process (the baseline, on a subset of
    the same history shape: at ~150 items/s the whole table would take 11 minutes)."""
    history = History(items=items, versions=versions)
    small, middle = (
        History(items=baseline_items, versions=versions),
        History(items=one_process_items, versions=versions),
    )
    with environment({**LOCAL, "AWS_DEFAULT_REGION": "us-east-1"}):
        with fake_endpoint(latency, small, extra=saved_schema(small)) as url:
            base = restore_run(url, small, "boto3", "restored-boto3", processes=1)
        with fake_endpoint(latency, middle, extra=saved_schema(middle)) as url:
            one = restore_run(url, middle, "native", "restored-one", processes=1)
        with fake_endpoint(latency, history, extra=saved_schema(history)) as url:
            ours = restore_run(url, history, "native", "restored", processes=0)
    return [
        Figure(
            f"restore over HTTP through the CLI's path: {items:,} items x {versions} versions, "
            f"{latency * 1000:.0f} ms per request, native S3 client, {ours.processes} processes",
            ours.rate,
            "items/s",
            baseline=base.rate,
            baseline_label=f"the same restore on plain boto3, one process, {baseline_items:,} items",
            goal_text=f">= {GOAL_RESTORE_ITEMS_PER_S:,} items/s on 2 cores",
            goal=lambda figure: figure.value >= GOAL_RESTORE_ITEMS_PER_S,
            notes=(
                _run_note("ours", ours, versions) + f"; the fake used {ours.fake_cpu / ours.seconds:.0%} of a core",
                _run_note("native client, one process", one, versions),
                _run_note("boto3, one process", base, versions),
                "the restored table checked item by item against the history at TIME (every run)",
            ),
        )
    ]
