"""A deterministic simulation of a live table backed up through Lambda's event source mapping (issue 12).

One seeded history: a table whose items are inserted, modified and removed (TTL removals too) on a
DynamoDB clock of whole seconds; its stream in several shards that split; the table deleted and
created again (a new stream label, sequence numbers starting lower) while the old stream still has
late batches; and Lambda's delivery of every shard as AWS documents it: batches, partial batch
responses, ``BisectBatchOnFunctionError`` after a timeout or an error, fresh and warm containers,
duplicate deliveries, late batches, and records dropped after ``MaximumRetryAttempts``. Records go to
the real ``Capture`` over the in-memory store behind ``FaultyStore`` (S3 faults). Full backups run
through the real ``ImageWriter`` while the stream races them, including changes and removals landing
inside an image's look-then-write window, with the machine's clock 5 s slow (image times come from
DynamoDB's ``Date``).

Then the restore planner (``restore.plan`` / ``restore.state``) is asked for the table at many times T
and compared, item by item, with the model: the newest change with event time <= T (docs/format.md).
Items whose records were dropped are not compared from the dropped change until the item's next
delivered change or the image time of a full backup that wrote the item's image (the backup cannot
know what it never got; a full backup skips an item whose stream change is after its read floor).

``python -m ddb_backup.lab.simulation --seeds 200`` (``make soak``) runs many histories and prints totals.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ddb_backup.aws.scan import ScanPage
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.full_backup import ImageWriter, page_times
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.lab.faults import FaultyStore
from ddb_backup.lab.lambda_sim import checkpoint
from ddb_backup.restore.plan import PointInTime, table_ranges
from ddb_backup.restore.state import iter_states, read_image
from ddb_backup.store import PutResult, StoredObject, StoreError
from ddb_backup.store.memory import MemoryStore

TABLE = "orders"
PREFIX = "sim"
SCHEMA = k.KeySchema("pk")
ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/"
LABELS = ("2026-11-27T00:00:00.000", "2026-11-27T06:00:00.000")
FIRST_SEQUENCES = (400_000_000_000_000_000_000, 1_000)  # the new stream's numbers start lower
START = 1_764_201_600.0
LOCAL_CLOCK_SKEW = -5.0  # the machine running full backups is 5 s slow
WARM_CONTAINERS = 3

Record = dict[str, Any]


@dataclass(frozen=True)
class SimConfig:
    """The size and the odds of one history."""

    items: int = 30
    steps: int = 260  # changes and deliveries, interleaved
    shards: int = 2
    batch_size: int = 8
    max_retries: int = 2  # MaximumRetryAttempts: then the rest of the batch is dropped
    fault_rate: float = 0.04  # of S3 requests
    fresh_rate: float = 0.35  # an invocation lands on a new container
    timeout_rate: float = 0.08  # an invocation times out midway (its first records written)
    error_rate: float = 0.03  # an invocation raises before doing anything
    duplicate_rate: float = 0.1  # a successful batch is delivered again
    race_rate: float = 0.35  # the stream strikes inside a full backup's look-then-write window
    full_backups: int = 2
    page_size: int = 4
    restore_times: int = 24


@dataclass
class SimReport:
    """What histories did and what the comparison found."""

    histories: int = 0
    changes: int = 0
    invocations: int = 0
    records_delivered: int = 0
    fresh_containers: int = 0
    timeouts: int = 0
    bisects: int = 0
    duplicates: int = 0
    dropped: int = 0
    late_old_stream: int = 0  # deliveries of an old stream's record after the new stream's, for one item
    splits: int = 0
    recreated_tables: int = 0
    full_backups: int = 0
    images_written: int = 0
    images_repaired: int = 0
    races: int = 0
    looks: int = 0
    faults: int = 0
    restores: int = 0
    states_compared: int = 0
    mismatches: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def operations(self) -> int:
        """Table changes, Lambda invocations and full-backup image writes attempted."""
        return self.changes + self.invocations + self.images_written

    def add(self, other: SimReport) -> None:
        for name, value in vars(other).items():
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
        self.examples.extend(other.examples[: max(0, 10 - len(self.examples))])

    def summary(self) -> str:
        return (
            f"{self.histories} histories, {self.operations:,} operations ({self.changes:,} changes, "
            f"{self.invocations:,} invocations, {self.images_written:,} full-backup images), "
            f"{self.fresh_containers:,} fresh containers, {self.timeouts:,} timeouts, {self.bisects:,} bisects, "
            f"{self.duplicates:,} duplicate deliveries, {self.dropped:,} records dropped, "
            f"{self.late_old_stream:,} late old-stream deliveries, {self.splits} shard "
            f"splits, {self.recreated_tables} re-created tables, {self.full_backups} full backups "
            f"({self.races:,} stream strikes in the look-then-write window, {self.images_repaired} racers "
            f"written again), {self.faults:,} S3 faults; {self.restores:,} restores, "
            f"{self.states_compared:,} item states compared, {self.mismatches} mismatches"
        )


@dataclass(frozen=True)
class Change:
    time: float
    label: str
    sequence: int
    image: dict[str, Any] | None


@dataclass
class Shard:
    """One shard's records not yet acknowledged; a child waits until its parent is drained."""

    name: str
    label: str
    parent: Shard | None = None
    queue: list[Record] = field(default_factory=list)
    closed: bool = False
    children: list[Shard] = field(default_factory=list)

    def ready(self) -> bool:
        return bool(self.queue) and (self.parent is None or self.parent.drained())

    def drained(self) -> bool:
        """No record left here nor in any ancestor (Lambda reads a child after its parent's end)."""
        return not self.queue and (self.parent is None or self.parent.drained())


class WindowStore:
    """The full backup's store: the stream may strike just before a look (HEAD) or a write (PUT)."""

    def __init__(self, inner: Any, strike: Any) -> None:
        self.inner = inner
        self.strike = strike

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        if version_id is None:
            self.strike("head", key)
        return self.inner.head(key, version_id)

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], **kw: Any) -> PutResult:
        self.strike("put", key)
        return self.inner.put(key, body, metadata, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Simulation:
    """One seeded history, then the comparison of restores with the model."""

    def __init__(self, seed: int, config: SimConfig) -> None:
        self.seed = seed
        self.config = config
        self.rng = random.Random(seed)
        self.now = START
        self.bucket = MemoryStore(clock=self._s3_time)
        self.store = FaultyStore.with_fault_rate(self.bucket, config.fault_rate, seed=seed)
        self.namer = k.ItemNamer(PREFIX, TABLE, False)
        self.table: dict[str, dict[str, Any]] = {}
        self.stream = 0
        self.sequence = FIRST_SEQUENCES[0]
        self.shards: list[Shard] = [Shard(f"{LABELS[0]}/{n}", LABELS[0]) for n in range(config.shards)]
        self.changes: dict[str, list[Change]] = {}
        self.dropped: dict[str, list[float]] = {}  # per item, event times of dropped records
        self.late: dict[str, list[float]] = {}  # per item, old-stream records delivered after a newer stream's
        self.newest_label: dict[str, str] = {}  # per item, the newest stream label delivered so far
        self.scanned: list[tuple[float, float, set[str]]] = []  # per page: (read instant, image time, items written)
        self.containers: list[Capture] = []
        self.fresh = 0
        self.report = SimReport(histories=1)

    def _s3_time(self) -> datetime:
        return datetime.fromtimestamp(math.floor(self.now), tz=UTC)

    # -- the table and its stream ------------------------------------------------------------------

    def tick(self) -> None:
        self.now += self.rng.choice([0.0, 0.0, 0.2, 0.5, 1.0, 2.0])

    def change(self, pk: str | None = None) -> None:
        """One change to the live table, and its stream record on the item's shard."""
        self.tick()
        pk = pk or f"item-{self.rng.randrange(self.config.items)}"
        keys = {"pk": {"S": pk}}
        old = self.table.get(pk)
        self.sequence += self.rng.randint(1, 40)
        if old is not None and self.rng.random() < 0.3:
            name, new = vm.REMOVE, None
            del self.table[pk]
        else:
            name = vm.MODIFY if old is not None else vm.INSERT
            new = {**keys, "v": {"N": str(self.sequence % 997)}, "note": {"S": f"{self.stream}-{self.sequence}"}}
            self.table[pk] = new
        record = self._record(name, keys, new, old)
        self.changes.setdefault(pk, []).append(
            Change(record["dynamodb"]["ApproximateCreationDateTime"], LABELS[self.stream], self.sequence, new)
        )
        self._shard_of(pk).queue.append(record)
        self.report.changes += 1

    def _record(
        self, name: str, keys: dict[str, Any], new: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> Record:
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": float(math.floor(self.now)),
            "Keys": keys,
            "SequenceNumber": str(self.sequence),
            "SizeBytes": 40,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            dynamodb["NewImage"] = new
        if old is not None:
            dynamodb["OldImage"] = old
        record: Record = {
            "eventID": f"{self.stream}-{self.sequence}",
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": dynamodb,
            "eventSourceARN": ARN + LABELS[self.stream],
        }
        if name == vm.REMOVE and self.rng.random() < 0.2:
            record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        return record

    def _open_shards(self) -> list[Shard]:
        return [shard for shard in self.shards if shard.label == LABELS[self.stream] and not shard.closed]

    def _shard_of(self, pk: str) -> Shard:
        """The open shard of ``pk``'s lineage: a key stays with its shard's children after a split."""
        roots = [shard for shard in self.shards if shard.label == LABELS[self.stream] and shard.parent is None]
        digest = zlib.crc32(pk.encode())
        shard, depth = roots[digest % len(roots)], 0
        while shard.closed:
            depth += 1
            shard = shard.children[(digest >> depth) & 1]
        return shard

    def split(self) -> None:
        """A shard closes and two children take its keys (read only after the parent is drained)."""
        parent = self.rng.choice(self._open_shards())
        parent.closed = True
        parent.children = [Shard(f"{parent.name}.{n}", parent.label, parent) for n in range(2)]
        self.shards += parent.children
        self.report.splits += 1

    def recreate_table(self) -> None:
        """The table is deleted (no stream records) and created again with a new stream."""
        self.now += 30.0
        self.table.clear()
        self.stream += 1
        self.sequence = FIRST_SEQUENCES[self.stream]
        self.shards += [Shard(f"{LABELS[self.stream]}/{n}", LABELS[self.stream]) for n in range(self.config.shards)]
        self.report.recreated_tables += 1

    # -- Lambda's delivery -------------------------------------------------------------------------

    def deliver(self, shard: Shard | None = None) -> None:
        """One batch of a ready shard (any stream: an old stream's late batches too)."""
        ready = [candidate for candidate in self.shards if candidate.ready()]
        if shard is None:
            if not ready:
                return
            shard = self.rng.choice(ready)
        size = self.rng.randint(1, self.config.batch_size)
        batch = shard.queue[:size]
        self.tick()
        self._attempt(batch, self.config.max_retries)
        del shard.queue[: len(batch)]

    def drain(self, *, pk: str | None = None) -> None:
        """Deliver until nothing is left (or nothing of ``pk``, its shards' ancestors first)."""
        while True:
            wanted = {id(shard) for shard in self.shards if shard.queue}
            if pk is not None:
                wanted = set()
                for shard in self.shards:
                    if any(record["dynamodb"]["Keys"]["pk"]["S"] == pk for record in shard.queue):
                        line: Shard | None = shard
                        while line is not None:
                            wanted.add(id(line))
                            line = line.parent
            ready = [shard for shard in self.shards if shard.ready() and id(shard) in wanted]
            if not ready:
                return
            self.deliver(ready[0])

    def _attempt(self, batch: list[Record], retries: int) -> None:
        """One invocation and what Lambda does after it (partial batch response, bisect, drop)."""
        if not batch:
            return
        function = self._container()
        self.report.invocations += 1
        self.report.records_delivered += len(batch)
        draw = self.rng.random()
        retry_from: int | None
        if draw < self.config.timeout_rate:
            self.report.timeouts += 1
            self._run(function, batch[: self.rng.randrange(len(batch) + 1)])  # the work done before the timeout
            retry_from, error = 0, True
        elif draw < self.config.timeout_rate + self.config.error_rate:
            retry_from, error = 0, True
        else:
            retry_from, error = checkpoint(batch, self._run(function, batch)), False
        if retry_from is None:
            if self.rng.random() < self.config.duplicate_rate:
                self.report.duplicates += 1
                self._run(self._container(), batch)  # at-least-once: the same records again
            return
        if retries == 0:
            self._drop(batch[retry_from:])
            return
        if error and len(batch) > 1:  # BisectBatchOnFunctionError
            self.report.bisects += 1
            half = len(batch) // 2
            self._attempt(batch[:half], retries - 1)
            self._attempt(batch[half:], retries - 1)
            return
        self._attempt(batch[retry_from:], retries - 1)

    def _run(self, function: Capture, batch: list[Record]) -> Mapping[str, Any]:
        for record in batch:
            pk, label = record["dynamodb"]["Keys"]["pk"]["S"], record["eventSourceARN"].rpartition("/")[2]
            if self.newest_label.get(pk, label) > label:  # the known limit of format.md's writing rule 3
                self.late.setdefault(pk, []).append(record["dynamodb"]["ApproximateCreationDateTime"])
                self.report.late_old_stream += 1
            self.newest_label[pk] = max(label, self.newest_label.get(pk, label))
        report = function.process(batch)
        self.report.looks += report.looks
        return report.lambda_response()

    def _drop(self, records: list[Record]) -> None:
        """Records past ``MaximumRetryAttempts`` go to the on-failure destination: lost for the backup."""
        for record in records:
            pk = record["dynamodb"]["Keys"]["pk"]["S"]
            self.dropped.setdefault(pk, []).append(record["dynamodb"]["ApproximateCreationDateTime"])
            self.report.dropped += 1

    def _container(self) -> Capture:
        if not self.containers or self.rng.random() < self.config.fresh_rate:
            self.report.fresh_containers += 1
            self.containers.append(Capture(self.store, CaptureSettings(prefix=PREFIX, workers=2)))
            if len(self.containers) > WARM_CONTAINERS:
                self.containers.pop(0).close()
            return self.containers[-1]
        return self.rng.choice(self.containers)

    # -- full backups ------------------------------------------------------------------------------

    def full_backup(self) -> None:
        """A scan of the live table, page by page, through the real ``ImageWriter``, racing the stream."""
        self.report.full_backups += 1
        for _ in range(self.rng.randint(0, 3)):  # items the stream has not written yet: nothing to look at
            self.fresh += 1
            self.change(f"fresh-{self.fresh}")
        keys_of: dict[str, str] = {}
        writer = ImageWriter(
            WindowStore(self.store, lambda request, key: self._strike(request, keys_of.get(key))),
            self.namer,
            SCHEMA,
            None,
        )
        pks = sorted(self.table)
        for first in range(0, len(pks), self.config.page_size):
            local_sent = self.now + LOCAL_CLOCK_SKEW
            self.now += 0.3
            items = [dict(self.table[pk]) for pk in pks[first : first + self.config.page_size] if pk in self.table]
            page = ScanPage(items, 0.0, local_sent, self.now + LOCAL_CLOCK_SKEW, float(math.floor(self.now)))
            floor, image_time = page_times(page)
            read: set[str] = set()
            self.scanned.append((self.now, image_time, read))
            for item in items:
                pk = item["pk"]["S"]
                keys_of[self.namer.object_key(k.canonical_key({"pk": item["pk"]}))] = pk
                self.report.images_written += 1
                try:
                    if writer.write(item, floor, image_time):
                        read.add(pk)
                except StoreError:
                    pass  # this image failed: the backup learnt nothing from it
                # A skipped image (the stream already holds a change after the read floor) repairs
                # nothing either: the bucket learns of the item again from that change on.
            if self.rng.random() < 0.5:
                self.change()
            if self.rng.random() < 0.5:
                self.deliver()
        self.report.images_repaired += writer.repaired

    def _strike(self, request: str, pk: str | None) -> None:
        """Inside the window: the item changes (often: is removed) and its stream catches up at once."""
        if pk is None or self.rng.random() >= self.config.race_rate:
            return
        self.report.races += 1
        if pk in self.table and request == "put" and self.rng.random() < 0.6:
            self.tick()
            self.sequence += 1
            old = self.table.pop(pk)
            record = self._record(vm.REMOVE, {"pk": {"S": pk}}, None, old)
            self.changes.setdefault(pk, []).append(
                Change(record["dynamodb"]["ApproximateCreationDateTime"], LABELS[self.stream], self.sequence, None)
            )
            self._shard_of(pk).queue.append(record)
            self.report.changes += 1
        else:
            self.change(pk)
        self.drain(pk=pk)

    # -- the history and the check -----------------------------------------------------------------

    def run(self) -> SimReport:
        config = self.config
        backups = {self.rng.randrange(config.steps // 4, config.steps) for _ in range(config.full_backups)}
        splits = {self.rng.randrange(config.steps) for _ in range(2)}
        recreate = self.rng.randrange(config.steps // 3, 2 * config.steps // 3)
        for step in range(config.steps):
            if step in splits:
                self.split()
            if step == recreate:
                self.recreate_table()
            if step in backups:
                self.full_backup()
            if self.rng.random() < 0.55:
                self.change()
            else:
                self.deliver()
        self.drain()
        if self.dropped:
            self.full_backup()  # what an operator does after records went to the on-failure destination
            self.drain()
        for container in self.containers:
            container.close()
        self.report.faults = self.store.injected
        self.compare()
        return self.report

    def restore_times(self) -> list[float]:
        times = sorted({change.time for changes in self.changes.values() for change in changes})
        picks = [
            self.rng.choice(times) + self.rng.choice([-1.0, -0.5, 0.0, 0.0, 0.5, 1.0])
            for _ in range(self.config.restore_times)
        ]
        return [START - 1, *picks, self.now + 1]

    def compare(self) -> None:
        ranges = table_ranges(self.bucket, PREFIX, TABLE)
        for at in self.restore_times():
            restored = {
                state.object_key: read_image(self.bucket, state)
                for _, state in iter_states(self.bucket, ranges, PointInTime(at), workers=1)
                if state is not None
            }
            self.report.restores += 1
            for pk in sorted(self.changes):
                if self._unknowable(pk, at):
                    continue
                object_key = self.namer.object_key(k.canonical_key({"pk": {"S": pk}}))
                expected = self.model_at(pk, at)
                self.report.states_compared += 1
                if restored.get(object_key) != expected:
                    self.report.mismatches += 1
                    if len(self.report.examples) < 10:
                        got = json.dumps(restored.get(object_key))
                        self.report.examples.append(
                            f"seed {self.seed} {pk} at {at - START:+}: restored {got}, model {json.dumps(expected)}"
                        )

    def model_at(self, pk: str, at: float) -> dict[str, Any] | None:
        before = [change for change in self.changes.get(pk, []) if change.time <= at]
        if not before:
            return None
        return max(before, key=lambda change: (change.time, change.label, change.sequence)).image

    def _unknowable(self, pk: str, at: float) -> bool:
        """From a dropped change until the item's next delivered change, or a full backup that wrote its image;
        from an old stream's change delivered after the new stream's until the item's next change (a
        limit of format.md's writing rule 3: the writer skips it)."""
        delivered = [c.time for c in self.changes[pk] if c.time not in self.dropped.get(pk, [])]
        for dropped in self.dropped.get(pk, []):
            if at < dropped:
                continue
            ends = [end for read_at, end, read in self.scanned if read_at >= dropped + 1 and pk in read]
            if at < min([*(t for t in delivered if t > dropped), *ends, math.inf]):
                return True
        for late in self.late.get(pk, []):
            if late <= at < min([*(c.time for c in self.changes[pk] if c.time > late), math.inf]):
                return True
        return False


def simulate(seeds: Iterator[int] | range, config: SimConfig | None = None) -> SimReport:
    total = SimReport(histories=0)
    for seed in seeds:
        total.add(Simulation(seed, config or SimConfig()).run())
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=SimConfig.steps)
    args = parser.parse_args(argv)
    logging.getLogger("ddb_backup").setLevel(logging.CRITICAL)  # injected faults log every failed record
    config = SimConfig(steps=args.steps)
    started = time.process_time()
    total = SimReport(histories=0)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        report = Simulation(seed, config).run()
        total.add(report)
    print(total.summary())
    print(f"{time.process_time() - started:.1f} s of CPU")
    for example in total.examples:
        print("  " + example)
    return 1 if total.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
