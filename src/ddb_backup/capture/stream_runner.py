"""The stream runner: reads a table's DynamoDB Stream without Lambda and hands each batch, in
exactly Lambda's event shape, to the same capture code the Lambda handler runs.

Its parts: the shards and their lineage (``stream_shards``: a shard is read after its parent),
reading one shard (``stream_reader``: iterators, GetRecords, expired iterators, trimmed records) and
the checkpoint (``stream_checkpoint``). This module polls and delivers:

- After each batch the handler acknowledged, the checkpoint records the shard's last sequence
  number. A partial batch response (``batchItemFailures``) acknowledges the records before the
  lowest failed one; reading resumes at that record (``AT_SEQUENCE_NUMBER``).
- A batch failing ``max_batch_attempts`` times in a row stops the runner (the checkpoint is kept).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ddb_backup.capture.batch_response import BatchHandler, lowest_failure
from ddb_backup.capture.records import lambda_record
from ddb_backup.capture.stream_checkpoint import CheckpointStore, StreamProgress
from ddb_backup.capture.stream_reader import ShardReader
from ddb_backup.capture.stream_shards import Gap, ShardLineage, ShardState, region_of
from ddb_backup.errors import BackupError

log = logging.getLogger(__name__)

Notify = Callable[[str], None]

MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class RunnerOptions:
    batch_size: int = 100  # GetRecords Limit; Lambda's default batch size
    until_idle: bool = False
    idle_rounds: int = 3  # empty rounds in a row that count as idle (GetRecords may pass empty parts of a shard)
    poll_interval: float = 1.0  # seconds between rounds that found nothing
    refresh_interval: float = 60.0  # seconds between DescribeStream calls looking for new shards
    max_batch_attempts: int = 8  # a batch that fails this often in a row stops the runner
    retry_base: float = 0.5  # first backoff after a failed batch, doubled each time
    start_at: str = "TRIM_HORIZON"  # where a shard without a checkpoint starts: or "LATEST" (new changes only)


@dataclass
class RunSummary:
    stream_arn: str
    batches: int = 0
    records: int = 0  # records acknowledged by the handler
    failed_batches: int = 0  # deliveries with failures, retried
    shards_finished: int = 0
    gaps: list[Gap] = field(default_factory=list)
    stopped: str = ""  # "idle" or "stopped"


class StreamRunner:
    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handler: BatchHandler,
        checkpoints: CheckpointStore,
        options: RunnerOptions = RunnerOptions(),
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        notify: Notify | None = None,
    ) -> None:
        self.stream_arn = stream_arn
        self.region = region_of(stream_arn)
        self.handler = handler
        self.options = options
        self.stop = stop or threading.Event()
        self.clock = clock
        self.notify = notify or (lambda message: log.info(message))
        self.summary = RunSummary(stream_arn)
        self.progress = StreamProgress(checkpoints, stream_arn, self.notify)
        self.shards = ShardLineage(streams, stream_arn)
        self.reader = ShardReader(
            streams,
            stream_arn,
            batch_size=options.batch_size,
            start_at=options.start_at,
            position=self.progress.position,
            report_gap=self._gap,
        )
        self._refreshed_at = 0.0

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> RunSummary:
        self.progress.load()
        self.refresh()
        empty_rounds = 0
        while not self.stop.is_set():
            active, finished = self._round()
            if finished or self.clock() - self._refreshed_at >= self.options.refresh_interval:
                self.refresh()
            empty_rounds = 0 if active or finished else empty_rounds + 1
            if empty_rounds == 0:
                continue
            if self.options.until_idle:
                if self._new_work_after_refresh():
                    empty_rounds = 0
                elif empty_rounds >= self.options.idle_rounds:
                    self.summary.stopped = "idle"
                    return self.summary
                continue
            self.stop.wait(self.options.poll_interval)
        self.summary.stopped = "stopped"
        return self.summary

    def _round(self) -> tuple[bool, bool]:
        """Poll every readable shard once: (some records came, some shard finished)."""
        active = finished = False
        for state in self.ready():
            if self.stop.is_set():
                break
            got, done = self.poll(state)
            active, finished = active or got > 0, finished or done
        return active, finished

    def _new_work_after_refresh(self) -> bool:
        before = {state.shard.shard_id for state in self.ready()}
        self.refresh()
        return any(state.shard.shard_id not in before for state in self.ready())

    def ready(self) -> list[ShardState]:
        return self.shards.ready(self.progress.finished)

    def refresh(self) -> None:
        listed = self.shards.refresh()
        self.progress.forget_gone(listed, self._gap)
        self._refreshed_at = self.clock()

    def _gap(self, gap: Gap) -> Gap:
        self.summary.gaps.append(gap)
        self.notify(f"GAP: {gap.describe()}; take a full backup to cover it")
        return gap

    # -- one shard --------------------------------------------------------------------------------

    def poll(self, state: ShardState) -> tuple[int, bool]:
        """One GetRecords on one shard and the delivery of what it returned: (records, finished)."""
        page = self.reader.get_records(state)
        records = page.get("Records", [])
        next_iterator = page.get("NextShardIterator")
        if records and not self._deliver(state, records):
            return len(records), False
        state.iterator = next_iterator
        if next_iterator is None:
            self._finish(state)
            return len(records), True
        return len(records), False

    def _deliver(self, state: ShardState, records: list[dict[str, Any]]) -> bool:
        """Hand one batch to the handler; True when it acknowledged all of it."""
        if state.pending_gap is not None:
            state.pending_gap.before = str(records[0]["dynamodb"]["SequenceNumber"])
            state.pending_gap = None
        event = {"Records": [lambda_record(record, self.stream_arn, self.region) for record in records]}
        try:
            failed = lowest_failure(self.handler(event), records)
        except Exception as err:  # as Lambda: an error fails the whole batch
            log.exception("the handler failed a whole batch")
            state.last_error = f"{type(err).__name__}: {err}"
            failed = str(records[0]["dynamodb"]["SequenceNumber"])
        acknowledged = [r for r in records if failed is None or int(r["dynamodb"]["SequenceNumber"]) < int(failed)]
        self.summary.batches += 1
        if acknowledged:
            self.progress.acknowledge(state.shard.shard_id, str(acknowledged[-1]["dynamodb"]["SequenceNumber"]))
            self.summary.records += len(acknowledged)
        if failed is None:
            state.failures = 0
            return True
        self._retry_from(state, failed, progressed=bool(acknowledged))
        return False

    def _retry_from(self, state: ShardState, failed: str, *, progressed: bool) -> None:
        self.summary.failed_batches += 1
        state.failures = 1 if progressed else state.failures + 1
        if state.failures >= self.options.max_batch_attempts:
            raise BackupError(
                f"shard {state.shard.shard_id}: the batch from record {failed} failed {state.failures} times in a "
                f"row{': ' + state.last_error if state.last_error else ''}",
                hint="fix the cause (see the log); the checkpoint is kept, so a rerun resumes at that record",
            )
        state.iterator = self.reader.iterator(state.shard.shard_id, "AT_SEQUENCE_NUMBER", failed)
        pause = min(self.options.retry_base * 2 ** (state.failures - 1), MAX_BACKOFF_SECONDS)
        self.notify(f"shard {state.shard.shard_id}: records from {failed} failed; retrying in {pause:g} s")
        self.stop.wait(pause)

    def _finish(self, state: ShardState) -> None:
        state.pending_gap = None
        self.progress.finish(state.shard.shard_id)
        self.summary.shards_finished += 1
        self.notify(f"shard {state.shard.shard_id} read to its end")
