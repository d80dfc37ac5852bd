"""Restore: items restored per second from a synthetic bucket (100,000 items x 5 versions) with 20 ms per
S3 request and per BatchWriteItem, against the original tool's pattern on a 2,000-item subset: the
listing, then for each item one GET and one BatchWriteItem of that one item, one item at a time."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from benchmarks.fakes import LatencyDynamoDB
from benchmarks.report import Figure
from benchmarks.synthetic import History, SyntheticStore
from ddb_backup.restore.plan import PointInTime, plan_range
from ddb_backup.restore.ranges import KeyRange

GOAL_ITEMS_PER_S = 1500
GOAL_RATIO = 20
TARGET = "restored"


@dataclass(frozen=True)
class Rate:
    items: int
    seconds: float

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


def bench_restore(items: int = 100_000, versions: int = 5, subset: int = 2_000, latency: float = 0.02) -> list[Figure]:
    baseline_store = SyntheticStore(History(items=subset, versions=versions), latency=latency)
    baseline = original_pattern(baseline_store, LatencyDynamoDB(("pk",), latency))
    note = (
        f"pending: the restore executor (branch 'restore') is not on main yet; "
        f"{items:,} items x {versions} versions to be measured against this baseline",
    )
    return [
        Figure(
            f"restore, original tool's pattern: {subset:,} items x {versions} versions, "
            f"{latency * 1000:.0f} ms per request",
            baseline.per_second,
            "items/s",
            notes=(f"{baseline.items:,} items in {baseline.seconds:.1f} s", *note),
        )
    ]
