"""Items of key ranges on their way to the target: planned (listed and placed at T), read (one GET,
unless the planner read the chosen version already), resolved (``resolve``) and written (``BatchWriter``).
A range is finished once it is listed to its end and every item of it written or rejected; then
``finish_range`` records it (the checkpoint, or a worker's message to its parent)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from ddb_backup.aws.ratelimit import TokenBucket
from ddb_backup.restore.options import RestoreOptions, RestoreSummary
from ddb_backup.restore.plan import PointInTime
from ddb_backup.restore.pools import GetPool, RangeTracker
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.read_once import Planned, plan_range_once
from ddb_backup.restore.rejects import RejectsFile
from ddb_backup.restore.resolve import REJECT, TAKE, Resolver
from ddb_backup.restore.state import map_ranges
from ddb_backup.restore.sync import key_digest
from ddb_backup.restore.target import Target, image_key_problem
from ddb_backup.restore.timeline import ItemState
from ddb_backup.restore.writer import BatchWriter, Reject, key_of
from ddb_backup.store import Fetched, ObjectStore
from ddb_backup.store.retry import soon_getter

FinishRange = Callable[[int, list[bytes]], None]
Show = Callable[[BatchWriter | None], None]


class ItemFlow:
    """One process's share of a restore's items: ``summary`` counts them; ``show`` reports progress."""

    def __init__(
        self,
        options: RestoreOptions,
        store: ObjectStore,
        dynamodb: Any,
        summary: RestoreSummary,
        stop: threading.Event,
        show: Show,
    ) -> None:
        self.options, self.store, self.dynamodb = options, store, dynamodb
        self.summary, self.stop, self._show = summary, stop, show
        self.when = PointInTime(options.at, options.max_lag)
        self._lock = threading.Lock()
        self.key_types: Mapping[str, str] = {}  # the target's key attributes' types (S, N, B)
        self.resolver: Resolver | None = None  # set once the key schema is known

    def count(self, state: ItemState) -> None:
        with self._lock:
            summary = self.summary
            summary.items += 1
            summary.metadata_reads += state.metadata_reads
            summary.legacy = summary.legacy or state.legacy
            if state.earliest is not None:
                summary.earliest = min(state.earliest, summary.earliest or state.earliest)
            if state.present:
                summary.puts += 1
            else:
                summary.skipped += 1
        if not state.present and self.resolver is not None:
            self.resolver.note_absent(state)  # an empty stray is reported as one (docs/format.md)

    def list_workers(self) -> int:
        return self.options.workers  # listing threads also HEAD the versions S3's clock cannot decide

    def writer(self, target: Target, on_reject: Reject) -> BatchWriter:
        return BatchWriter(
            self.dynamodb,
            target.name,
            target.key_schema,
            workers=max(2, self.options.workers // 4),
            batch_size=self.options.batch_size,
            limiter=TokenBucket(self.options.write_rate) if self.options.write_rate else None,
            max_retry_seconds=self.options.max_retry_seconds,
            on_reject=on_reject,
            stop=self.stop,
        )

    def write_ranges(self, ranges: list[KeyRange], writer: BatchWriter, finish_range: FinishRange) -> None:
        tracker = RangeTracker(lambda key_range, digests: finish_range(key_range.index, digests))
        gets = GetPool(self.options.workers, self.stop, soon_getter(self.store))
        states = map_ranges(
            ranges, lambda key_range: plan_range_once(self.store, key_range, self.when), self.list_workers()
        )
        try:
            for key_range, planned in states:
                gets.raise_failure()
                if self.stop.is_set():
                    break
                if planned is None:
                    tracker.listed(key_range)
                    continue
                state = planned.state
                self.count(state)
                if state.present:
                    tracker.present(key_range, None, writes=1)
                    if not self._submit(gets, key_range, planned, writer, tracker):
                        break
                self._show(writer)
            gets.wait(lambda: self._show(writer))
            gets.raise_failure()
            writer.flush()
        finally:
            getattr(states, "close", lambda: None)()  # a generator: stop its listing threads now
            gets.close()

    def _submit(
        self, gets: GetPool, key_range: KeyRange, planned: Planned, writer: BatchWriter, tracker: RangeTracker
    ) -> bool:
        """One present item queued: its version's GET started, unless the planner read it already."""
        state = planned.state
        if planned.stored is not None or state.version is None:  # the planner's GET: not read again
            return gets.submit(self._restore_item, None, key_range, planned, writer, tracker)
        version_id = state.version.version_id
        return gets.submit_get(state.object_key, version_id, self._restore_item, key_range, planned, writer, tracker)

    def _restore_item(
        self, fetched: Fetched | None, key_range: KeyRange, planned: Planned, writer: BatchWriter, tracker: RangeTracker
    ) -> None:
        """One present item resolved and written: its chosen version as the planner read it, as
        ``fetched`` (a GET started without a waiting thread) gives it, or read here."""
        state = planned.state
        assert state.version is not None and self.resolver is not None
        if self.stop.is_set():
            return
        at, max_lag = self.options.at, self.options.max_lag
        if planned.stored is not None:  # the planner's GET: the version is not read again
            resolution = self.resolver.resolve_stored(state, planned.stored, at, max_lag=max_lag)
        else:
            resolution = self.resolver.resolve(state, at, max_lag=max_lag, fetched=fetched)
        with self._lock:
            self.summary.image_reads += 1
            self.summary.legacy = self.summary.legacy or resolution.legacy
        image = resolution.image
        if resolution.kind not in (TAKE, REJECT) or image is None:
            tracker.written(key_range)  # a stray object, or the item's state is held under another name
            return
        problem = image_key_problem(image, writer.schema, self.key_types)
        if problem is not None:
            writer.reject(image, f"{state.object_key} {state.version.version_id}: {problem}")
            tracker.written(key_range)
            return
        digest = key_digest(key_of(image, writer.schema)) if self.options.sync else None
        writer.put(image, done=lambda: tracker.written(key_range, digest))

    def collect(self, writer: BatchWriter, rejects: RejectsFile) -> None:
        stats = writer.stats
        self.summary.puts, self.summary.deletes = stats.puts, stats.deletes
        self.summary.retries, self.summary.throttled = stats.retries, stats.throttled
        self.summary.rejected = rejects.count
        self.summary.rejects_path = rejects.path if rejects.count else None
        rejects.close()
