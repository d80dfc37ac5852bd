"""Restore: items restored per second from a synthetic bucket (100,000 items x 5 versions) with 20 ms per
S3 request and per BatchWriteItem, against the original tool's pattern on a 2,000-item subset: the
listing, then for each item one GET and one BatchWriteItem of that one item, one item at a time."""

from __future__ import annotations

import importlib
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.fakes import LatencyDynamoDB
from benchmarks.report import Figure
from benchmarks.synthetic import History, SyntheticStore
from ddb_backup.format.table_schema import reduce_description, schema_object_key
from ddb_backup.restore.plan import PointInTime, plan_range
from ddb_backup.restore.ranges import KeyRange

GOAL_ITEMS_PER_S = 1500
GOAL_RATIO = 20
SOURCE = "orders"
TARGET = "restored"


@dataclass(frozen=True)
class Rate:
    items: int
    seconds: float
    cpu: float = 0.0  # this process's CPU seconds meanwhile (the synthetic bucket's own work included)

    @property
    def per_second(self) -> float:
        return self.items / self.seconds


def original_pattern(store: SyntheticStore, dynamodb: LatencyDynamoDB) -> Rate:
    """The original tool's requests: list, then per item a GET and a one-item BatchWriteItem, in turn."""
    history = store.history
    whole = KeyRange(0, history.prefix, None, None)
    started = time.perf_counter()
    restored = 0
    for state in plan_range(store, whole, PointInTime(history.at)):
        if state.version is None:
            continue
        image = json.loads(store.get(state.object_key, state.version.version_id).body)
        dynamodb.batch_write_item(RequestItems={TARGET: [{"PutRequest": {"Item": image}}]})
        restored += 1
    seconds = time.perf_counter() - started
    if dynamodb.item_count(TARGET) != restored:
        raise AssertionError(f"{dynamodb.item_count(TARGET)} items in the table, {restored} restored")
    return Rate(restored, seconds)


def saved_schema(history: History) -> dict[str, bytes]:
    """The source table's schema as ``full-backup`` saves it, so restore creates the target from it."""
    table = {
        "TableName": SOURCE,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
    }
    prefix = history.prefix.removesuffix(f"{SOURCE}/")
    return {schema_object_key(prefix, SOURCE): json.dumps(reduce_description(table)).encode("utf-8")}


def executor() -> Any | None:
    """The restore executor's module, once it is on this branch (``ddb_backup.restore.execute``)."""
    try:
        return importlib.import_module("ddb_backup.restore.execute")
    except ModuleNotFoundError:
        return None


def our_restore(execute: Any, history: History, latency: float) -> Rate:
    """``restore`` of the whole synthetic table into a new table on the fake DynamoDB."""
    store = SyntheticStore(history, latency=latency, extra=saved_schema(history))
    dynamodb = LatencyDynamoDB(("pk",), latency)
    with tempfile.TemporaryDirectory(prefix="bench-restore-") as folder:
        options = execute.RestoreOptions(
            bucket="bench",
            source=SOURCE,
            target=TARGET,
            at=history.at,
            prefix=history.prefix.removesuffix(f"{SOURCE}/").rstrip("/"),
            checkpoint=Path(folder) / "checkpoint",
        )
        started, cpu = time.perf_counter(), time.process_time()
        summary = execute.restore(options, store, dynamodb)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if dynamodb.item_count(TARGET) != history.items or summary.puts != history.items:
        raise AssertionError(f"{dynamodb.item_count(TARGET)} items restored of {history.items}")
    return Rate(summary.puts, seconds, cpu)


def bench_restore(items: int = 100_000, versions: int = 5, subset: int = 2_000, latency: float = 0.02) -> list[Figure]:
    baseline_store = SyntheticStore(History(items=subset, versions=versions), latency=latency)
    baseline = original_pattern(baseline_store, LatencyDynamoDB(("pk",), latency))
    baseline_figure = Figure(
        f"restore, the original tool's pattern: {subset:,} items x {versions} versions",
        baseline.per_second,
        "items/s",
        notes=(f"{baseline.items:,} items in {baseline.seconds:.1f} s",),
    )
    execute = executor()
    if execute is None:
        pending = "pending: the restore executor (ddb_backup.restore.execute) is not on this branch yet"
        return [replace(baseline_figure, notes=(*baseline_figure.notes, pending))]
    ours = our_restore(execute, History(items=items, versions=versions), latency)
    return [
        Figure(
            f"restore: {items:,} items x {versions} versions, "
            f"{latency * 1000:.0f} ms per S3 request and per BatchWriteItem",
            ours.per_second,
            "items/s",
            baseline=baseline.per_second,
            baseline_label=f"the original tool's pattern on {subset:,} items",
            goal_text=f">= {GOAL_ITEMS_PER_S:,} items/s and >= {GOAL_RATIO}x the baseline",
            goal=lambda figure: figure.value >= GOAL_ITEMS_PER_S and (figure.ratio or 0) >= GOAL_RATIO,
            notes=(
                f"{ours.items:,} items in {ours.seconds:.1f} s, {ours.cpu:.1f} s of CPU (fakes included); "
                f"baseline: {baseline.items:,} items in {baseline.seconds:.1f} s",
            ),
        )
    ]
