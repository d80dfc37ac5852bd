"""Soak: a long capture run under injected faults, checked against a model, with memory measured.

A synthetic shard (``Workload``) of INSERT / MODIFY / REMOVE records over a fixed set of items goes
through Lambda's delivery (``lambda_sim``) to ``Capture`` writing to an in-memory store behind
``FaultyStore``. The run is cut into windows: after each window, every item's versions are checked
against the model (``check_versions``), then that window's store is dropped, so what memory remains
is capture's own (replay guard, fault dice, thread pool) and must stay flat.

``python -m ddb_backup.lab.soak --records 50000`` (``make soak``) prints one line per window.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.lab.faults import FaultyStore
from ddb_backup.lab.lambda_sim import CaptureFunction, DeliveryStats, ShardDelivery
from ddb_backup.store import ObjectStore
from ddb_backup.store.memory import MemoryStore

TABLE = "soak"
REGION = "us-east-1"
STREAM_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/2026-11-27T00:00:00.000"
FIRST_SEQUENCE = 100_000_000_000_000_000_000  # AWS sequence numbers are about 21 digits
START_TIME = 1_764_000_000
_NUMBER_SPELLINGS = ("{}", "{}.0", "{}E0", "+{}", "0{}", "{}.000")


@dataclass(frozen=True)
class Change:
    """One change of one item, as the model remembers it."""

    event_id: str
    event_name: str
    event_time: float
    sequence: int
    image: dict[str, Any] | None  # the new image; None for a removal


@dataclass
class Window:
    """A slice of the shard: the records in stream order and, per item (its ``key_json``), its changes."""

    records: list[dict[str, Any]]
    changes: dict[str, list[Change]]
    keys: dict[str, dict[str, Any]]


class Workload:
    """A deterministic shard of changes to ``items`` items of a table keyed ``pk`` (S) + ``sk`` (N).

    Numbers in keys are spelled differently from record to record (``7``, ``7.0``, ``7E0``...): one
    item all the same. Event times are whole seconds, ``per_second`` records each, as on AWS.
    """

    def __init__(self, *, items: int, seed: int = 0, per_second: int = 50, payload: int = 200) -> None:
        self._rng = random.Random(seed)
        self._items = items
        self._per_second = per_second
        self._payload = payload
        self._images: dict[int, dict[str, Any] | None] = {}
        self._count = 0

    def _key(self, item: int) -> dict[str, Any]:
        spelling = self._rng.choice(_NUMBER_SPELLINGS)
        return {"pk": {"S": f"item-{item:06d}"}, "sk": {"N": spelling.format(item % 97)}}

    def _record(self, item: int) -> tuple[dict[str, Any], Change]:
        sequence = FIRST_SEQUENCE + self._count
        event_time = float(START_TIME + self._count // self._per_second)
        self._count += 1
        keys = self._key(item)
        old = self._images.get(item)
        if old is not None and self._rng.random() < 0.2:
            name, new = vm.REMOVE, None
        else:
            name = vm.MODIFY if old is not None else vm.INSERT
            text = "".join(self._rng.choices("abcdefghij ", k=self._rng.randint(1, self._payload)))
            new = {**keys, "n": {"N": str(self._count)}, "text": {"S": text}, "tags": {"SS": ["a", str(item)]}}
        self._images[item] = new
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": event_time,
            "Keys": keys,
            "SequenceNumber": str(sequence),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            dynamodb["NewImage"] = new
        if old is not None:
            dynamodb["OldImage"] = old
        event_id = f"{sequence:x}"
        raw = {
            "eventID": event_id,
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": dynamodb,
            "eventSourceARN": STREAM_ARN,
        }
        return raw, Change(event_id, name, event_time, sequence, new)

    def window(self, count: int) -> Window:
        """The next ``count`` records of the shard."""
        window = Window([], {}, {})
        for _ in range(count):
            raw, change = self._record(self._rng.randrange(self._items))
            identity = k.key_json(raw["dynamodb"]["Keys"])
            window.records.append(raw)
            window.changes.setdefault(identity, []).append(change)
            window.keys.setdefault(identity, k.canonical_key(raw["dynamodb"]["Keys"]))
        return window


def check_versions(store: ObjectStore, window: Window, namer: k.ItemNamer) -> list[str]:
    """Every problem found comparing the store with the model (empty: all is well).

    Per item: the versions' ``(event-id, event-time, sequence-number)``, oldest first and without
    repeats of an event id (a retry may write a change twice), are exactly the model's changes in
    order; the newest version is the model's final state (its image, or a tombstone then a delete
    marker).
    """
    problems: list[str] = []
    for identity, changes in window.changes.items():
        problems += _check_item(store, namer.object_key(window.keys[identity]), changes)
    return problems


def _check_item(store: ObjectStore, object_key: str, changes: Sequence[Change]) -> list[str]:
    rows = [row for row in store.list_versions(object_key) if row.key == object_key][::-1]  # oldest first
    written: list[tuple[str | None, float, int]] = []
    seen: set[str | None] = set()
    for row in rows:
        if row.is_delete_marker:
            continue
        meta = vm.VersionMeta.from_s3(store.head(object_key, row.version_id).metadata)
        if meta is None or meta.event_id in seen:
            continue
        seen.add(meta.event_id)
        written.append((meta.event_id, meta.event_time, int(meta.sequence_number or 0)))
    expected = [(c.event_id, c.event_time, c.sequence) for c in changes]
    if written != expected:
        return [f"{object_key}: versions {written[:5]}... differ from the changes {expected[:5]}..."]
    return _check_final(store, object_key, rows[-1].is_delete_marker if rows else True, changes[-1])


def _check_final(store: ObjectStore, object_key: str, deleted: bool, last: Change) -> list[str]:
    if last.image is None:
        return [] if deleted else [f"{object_key}: removed last, but the bucket still shows it"]
    if deleted:
        return [f"{object_key}: the newest change is {last.event_name}, but the newest version is a delete marker"]
    newest = store.get(object_key)
    if json.loads(newest.body) != last.image or newest.metadata.get(vm.EVENT_ID) != last.event_id:
        return [f"{object_key}: the newest version is not the image of {last.event_id}"]
    return []


@dataclass(frozen=True)
class Sample:
    """Memory after a window (store dropped, garbage collected)."""

    records: int
    traced_bytes: int
    rss_bytes: int


@dataclass
class SoakReport:
    records: int = 0
    seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    delivery: DeliveryStats = field(default_factory=DeliveryStats)
    faults: dict[str, int] = field(default_factory=dict)
    store_requests: int = 0

    def growth(self, *, rss: bool = False, skip: int = 2) -> int:
        """Memory growth (traced, or RSS) from the end of window ``skip`` (warm-up done) to the last."""
        if len(self.samples) <= skip:
            return 0
        first, last = self.samples[skip - 1], self.samples[-1]
        return last.rss_bytes - first.rss_bytes if rss else last.traced_bytes - first.traced_bytes


def rss_bytes() -> int:
    """The resident set size now (Linux ``/proc``), else the peak the OS reports."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * resource.getpagesize()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextmanager
def quiet_capture_logs() -> Iterator[None]:
    """Injected faults make capture log thousands of expected errors; the delivery stats count them."""
    logger = logging.getLogger("ddb_backup.capture.engine")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_soak(
    *,
    records: int,
    items: int = 2000,
    window: int = 5000,
    fault_rate: float = 0.10,
    cold_start_rate: float = 0.1,
    batch_size: int = 100,
    workers: int = 16,
    seed: int = 0,
    trace_memory: bool = False,
    on_window: Any = None,
) -> SoakReport:
    """Run ``records`` records through faulty capture, window by window; see the module docstring."""
    settings = CaptureSettings(workers=workers)
    faulty = FaultyStore.with_fault_rate(MemoryStore(), fault_rate, seed=seed)
    delivery = ShardDelivery(
        lambda: CaptureFunction(Capture(faulty, settings)),
        batch_size=batch_size,
        max_attempts=50,
        cold_start_rate=cold_start_rate,
        seed=seed,
    )
    workload = Workload(items=items, seed=seed)
    namer = k.ItemNamer(settings.prefix, TABLE, plain_text=False)
    report = SoakReport(delivery=delivery.stats)
    started = time.perf_counter()
    if trace_memory:
        tracemalloc.start()
    try:
        with quiet_capture_logs():
            while report.records < records:
                _soak_window(report, workload.window(min(window, records - report.records)), faulty, delivery, namer)
                if on_window is not None:
                    on_window(report)
    finally:
        delivery.close()
        if trace_memory:
            tracemalloc.stop()
    report.seconds = time.perf_counter() - started
    report.faults = dict(faulty.counts)
    return report


def _soak_window(
    report: SoakReport, window: Window, faulty: FaultyStore, delivery: ShardDelivery, namer: k.ItemNamer
) -> None:
    store = MemoryStore()
    faulty.inner = store
    delivery.deliver(window.records)
    report.records += len(window.records)
    report.problems += check_versions(store, window, namer)
    report.store_requests += store.requests
    faulty.inner = MemoryStore()
    del store, window
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    report.samples.append(Sample(report.records, traced, rss_bytes()))


def _print_window(report: SoakReport) -> None:
    sample = report.samples[-1]
    stats = report.delivery
    traced = f"traced {sample.traced_bytes / 1e6:7.2f} MB  " if tracemalloc.is_tracing() else ""
    print(
        f"{sample.records:>8} records  {traced}rss {sample.rss_bytes / 1e6:7.1f} MB  "
        f"invocations {stats.invocations}  retries {stats.retries}  cold starts {stats.cold_starts}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Capture soak under injected S3 faults (see ddb_backup.lab.soak).")
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--window", type=int, default=5000)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--cold-start-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--trace", action="store_true", help="measure Python allocations (tracemalloc; ~5x slower, inflates RSS)"
    )
    parser.add_argument("--max-growth-mb", type=float, default=8.0, help="allowed growth after window 2")
    args = parser.parse_args(argv)
    report = run_soak(
        records=args.records,
        items=args.items,
        window=args.window,
        fault_rate=args.fault_rate,
        cold_start_rate=args.cold_start_rate,
        seed=args.seed,
        trace_memory=args.trace,
        on_window=_print_window,
    )
    return _summarise(report, args.max_growth_mb * 1e6, traced=args.trace)


def _summarise(report: SoakReport, max_growth: float, *, traced: bool) -> int:
    stats = report.delivery
    print(
        f"{report.records} records in {report.seconds:.1f} s; {report.store_requests} store requests, "
        f"faults injected {sum(report.faults.values())} {report.faults}; "
        f"{stats.invocations} invocations, {stats.retries} retries, {stats.cold_starts} cold starts"
    )
    growth = report.growth(rss=not traced)
    what = "traced memory" if traced else "RSS"
    print(f"{what} growth from the end of window 2 to the end: {growth / 1e6:.2f} MB (bound {max_growth / 1e6:.1f} MB)")
    for problem in report.problems[:20]:
        print(f"PROBLEM {problem}", file=sys.stderr)
    ok = not report.problems and growth <= max_growth
    print(f"soak: OK, every change checked in the store ({len(report.problems)} problems)" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
