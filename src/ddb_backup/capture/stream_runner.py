"""The stream runner: reads a table's DynamoDB Stream without Lambda and hands each batch, in
exactly Lambda's event shape, to the same capture code the Lambda handler runs.

- Shards come from DescribeStream (paginated with ``ExclusiveStartShardId``). A shard is read only
  after its parent has been read to its end (or is gone from the stream), as Lambda does.
- After each batch the handler acknowledged, the checkpoint records the shard's last sequence
  number. A partial batch response (``batchItemFailures``) acknowledges the records before the
  lowest failed one; reading resumes at that record (``AT_SEQUENCE_NUMBER``).
- An expired iterator is replaced (``AFTER_SEQUENCE_NUMBER`` the checkpoint). Records the stream
  trimmed before they were read are reported as a gap with the sequence range lost, and reading
  goes on from the oldest record left (``TRIM_HORIZON``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup.capture.engine import Capture
from ddb_backup.capture.records import lambda_record
from ddb_backup.capture.stream_checkpoint import Checkpoint, CheckpointStore
from ddb_backup.errors import BackupError, UserError

log = logging.getLogger(__name__)

BatchHandler = Callable[[dict[str, Any]], Mapping[str, Any]]
Notify = Callable[[str], None]

EXPIRED = "ExpiredIteratorException"
TRIMMED = "TrimmedDataAccessException"
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


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_id: str | None = None
    starting_sequence: str | None = None
    ending_sequence: str | None = None  # set once the shard is closed

    @classmethod
    def from_description(cls, shard: Mapping[str, Any]) -> Shard:
        numbers = shard.get("SequenceNumberRange", {})
        return cls(
            shard["ShardId"],
            shard.get("ParentShardId"),
            numbers.get("StartingSequenceNumber"),
            numbers.get("EndingSequenceNumber"),
        )


@dataclass
class Gap:
    """Records lost before they were read: sequence numbers after ``after`` and before ``before``
    (``None``: from the shard's start / to its end)."""

    shard_id: str
    after: str | None
    before: str | None
    reason: str

    def describe(self) -> str:
        start = f"after {self.after}" if self.after else "from its start"
        end = f"before {self.before}" if self.before else "to its end"
        return f"shard {self.shard_id}: records {start} {end} were lost ({self.reason})"


@dataclass
class RunSummary:
    stream_arn: str
    batches: int = 0
    records: int = 0  # records acknowledged by the handler
    failed_batches: int = 0  # deliveries with failures, retried
    shards_finished: int = 0
    gaps: list[Gap] = field(default_factory=list)
    stopped: str = ""  # "idle" or "stopped"


@dataclass
class ShardState:
    shard: Shard
    iterator: str | None = None
    failures: int = 0
    last_error: str = ""
    pending_gap: Gap | None = None


def list_shards(streams: Any, stream_arn: str) -> list[Shard]:
    """Every shard of the stream, following DescribeStream's pages."""
    shards: list[Shard] = []
    args: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        description = streams.describe_stream(**args)["StreamDescription"]
        shards += [Shard.from_description(shard) for shard in description.get("Shards", [])]
        last = description.get("LastEvaluatedShardId")
        if not last:
            return shards
        args["ExclusiveStartShardId"] = last


def region_of(stream_arn: str) -> str:
    return stream_arn.split(":")[3]


def lowest_failure(response: Any, records: Sequence[Mapping[str, Any]]) -> str | None:
    """The lowest failed sequence number of a partial batch response; as Lambda does, a malformed
    response or an identifier not in the batch fails the whole batch."""
    first = str(records[0]["dynamodb"]["SequenceNumber"])
    if not isinstance(response, Mapping):
        return None if response is None else first
    failures = response.get("batchItemFailures") or []
    in_batch = {str(record["dynamodb"]["SequenceNumber"]) for record in records}
    identifiers = [item.get("itemIdentifier") if isinstance(item, Mapping) else None for item in failures]
    if any(not identifier or str(identifier) not in in_batch for identifier in identifiers):
        return first
    return min((str(identifier) for identifier in identifiers), key=int, default=None)


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
        self.streams = streams
        self.stream_arn = stream_arn
        self.region = region_of(stream_arn)
        self.handler = handler
        self.checkpoints = checkpoints
        self.options = options
        self.stop = stop or threading.Event()
        self.clock = clock
        self.notify = notify or (lambda message: log.info(message))
        self.summary = RunSummary(stream_arn)
        self.checkpoint = Checkpoint(stream_arn)
        self.states: dict[str, ShardState] = {}
        self._refreshed_at = 0.0

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> RunSummary:
        self._load_checkpoint()
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
        """Shards not finished whose parent is finished or gone from the stream, oldest first."""
        known = self.states
        return [
            state
            for shard_id, state in sorted(known.items(), key=lambda item: int(item[1].shard.starting_sequence or 0))
            if shard_id not in self.checkpoint.finished
            and (
                state.shard.parent_id is None
                or state.shard.parent_id not in known
                or state.shard.parent_id in self.checkpoint.finished
            )
        ]

    # -- shards and the checkpoint ----------------------------------------------------------------

    def _load_checkpoint(self) -> None:
        loaded = self.checkpoints.load()
        if loaded is None:
            return
        if loaded.stream_arn != self.stream_arn:
            self.notify(
                f"checkpoint {self.checkpoints.location} is for another stream ({loaded.stream_arn}); "
                "the table's stream was replaced, so reading starts from the oldest records of the new one"
            )
            return
        self.checkpoint = loaded

    def refresh(self) -> None:
        shards = {shard.shard_id: shard for shard in list_shards(self.streams, self.stream_arn)}
        for shard_id, shard in shards.items():
            state = self.states.get(shard_id)
            if state is None:
                self.states[shard_id] = ShardState(shard)
            else:
                state.shard = shard
        for shard_id in [shard_id for shard_id in self.states if shard_id not in shards]:
            del self.states[shard_id]
        self._forget_trimmed_shards(shards)
        self._refreshed_at = self.clock()

    def _forget_trimmed_shards(self, listed: Mapping[str, Shard]) -> None:
        """Shards gone from the stream (24 hours after they closed): a finished one is forgotten, an
        unfinished one lost its unread records."""
        gone = [
            shard_id for shard_id in {*self.checkpoint.positions, *self.checkpoint.finished} if shard_id not in listed
        ]
        for shard_id in gone:
            if shard_id not in self.checkpoint.finished:
                self._gap(Gap(shard_id, self.checkpoint.positions.get(shard_id), None, "the shard left the stream"))
            self.checkpoint.positions.pop(shard_id, None)
            self.checkpoint.finished.discard(shard_id)
        if gone:
            self.checkpoints.save(self.checkpoint)

    def _gap(self, gap: Gap) -> Gap:
        self.summary.gaps.append(gap)
        self.notify(f"GAP: {gap.describe()}; take a full backup to cover it")
        return gap

    # -- one shard --------------------------------------------------------------------------------

    def new_iterator(self, state: ShardState) -> str:
        shard = state.shard
        position = self.checkpoint.positions.get(shard.shard_id)
        if position and shard.starting_sequence and int(position) < int(shard.starting_sequence):
            state.pending_gap = self._gap(Gap(shard.shard_id, position, None, "checkpoint older than the shard"))
            position = None
        try:
            return self._iterator(
                shard.shard_id, "AFTER_SEQUENCE_NUMBER" if position else self.options.start_at, position
            )
        except ClientError as err:
            if _code(err) != TRIMMED:
                raise
        state.pending_gap = self._gap(Gap(shard.shard_id, position, None, "trimmed before it was read"))
        return self._iterator(shard.shard_id, "TRIM_HORIZON")

    def _iterator(self, shard_id: str, kind: str, sequence: str | None = None) -> str:
        args = {"StreamArn": self.stream_arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if sequence is not None:
            args["SequenceNumber"] = sequence
        return str(self.streams.get_shard_iterator(**args)["ShardIterator"])

    def _get_records(self, state: ShardState) -> dict[str, Any]:
        for _ in range(3):
            if state.iterator is None:
                state.iterator = self.new_iterator(state)
            try:
                page: dict[str, Any] = self.streams.get_records(
                    ShardIterator=state.iterator, Limit=self.options.batch_size
                )
                return page
            except ClientError as err:
                if _code(err) == EXPIRED:
                    log.info("shard iterator expired; getting a new one from the checkpoint")
                elif _code(err) == TRIMMED:
                    state.pending_gap = self._gap(
                        Gap(
                            state.shard.shard_id,
                            self.checkpoint.positions.get(state.shard.shard_id),
                            None,
                            "trimmed before it was read",
                        )
                    )
                    state.iterator = self._iterator(state.shard.shard_id, "TRIM_HORIZON")
                    continue
                else:
                    raise
                state.iterator = None
        raise BackupError(f"shard {state.shard.shard_id}: GetRecords keeps failing with expired or trimmed iterators")

    def poll(self, state: ShardState) -> tuple[int, bool]:
        """One GetRecords on one shard and the delivery of what it returned: (records, finished)."""
        page = self._get_records(state)
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
            self._acknowledge(state, acknowledged)
        if failed is None:
            state.failures = 0
            return True
        self._retry_from(state, failed, progressed=bool(acknowledged))
        return False

    def _acknowledge(self, state: ShardState, records: list[dict[str, Any]]) -> None:
        self.checkpoint.positions[state.shard.shard_id] = str(records[-1]["dynamodb"]["SequenceNumber"])
        self.checkpoints.save(self.checkpoint)
        self.summary.records += len(records)

    def _retry_from(self, state: ShardState, failed: str, *, progressed: bool) -> None:
        self.summary.failed_batches += 1
        state.failures = 1 if progressed else state.failures + 1
        if state.failures >= self.options.max_batch_attempts:
            raise BackupError(
                f"shard {state.shard.shard_id}: the batch from record {failed} failed {state.failures} times in a "
                f"row{': ' + state.last_error if state.last_error else ''}",
                hint="fix the cause (see the log); the checkpoint is kept, so a rerun resumes at that record",
            )
        state.iterator = self._iterator(state.shard.shard_id, "AT_SEQUENCE_NUMBER", failed)
        pause = min(self.options.retry_base * 2 ** (state.failures - 1), MAX_BACKOFF_SECONDS)
        self.notify(f"shard {state.shard.shard_id}: records from {failed} failed; retrying in {pause:g} s")
        self.stop.wait(pause)

    def _finish(self, state: ShardState) -> None:
        if state.pending_gap is not None:
            state.pending_gap = None
        self.checkpoint.finished.add(state.shard.shard_id)
        self.checkpoints.save(self.checkpoint)
        self.summary.shards_finished += 1
        self.notify(f"shard {state.shard.shard_id} read to its end")


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def stream_arn_for(dynamodb: Any, table: str, *, needs_old_image: bool = False) -> str:
    """The table's current stream, checked for the images capture needs."""
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as err:
        if _code(err) == "ResourceNotFoundException":
            raise UserError(
                f"table {table!r} does not exist in this region", hint="check --table and --region"
            ) from err
        raise
    spec = description.get("StreamSpecification") or {}
    arn = description.get("LatestStreamArn")
    enable = (
        f"aws dynamodb update-table --table-name {table} "
        "--stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES"
    )
    if not spec.get("StreamEnabled") or not arn:
        raise UserError(f"table {table!r} has no DynamoDB stream", hint=enable)
    view = spec.get("StreamViewType")
    wanted = ("NEW_AND_OLD_IMAGES",) if needs_old_image else ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    if view not in wanted:
        raise UserError(
            f"table {table!r} has a {view} stream, which lacks the images a backup needs",
            hint="disable the stream, then " + enable,
        )
    return str(arn)


def capture_handler(capture: Capture) -> BatchHandler:
    """The Lambda handler's work on one event (``Capture.process``), answering its partial batch response."""

    def handle(event: dict[str, Any]) -> Mapping[str, Any]:
        return capture.process(event["Records"]).lambda_response()

    return handle
