"""Reading one shard of a DynamoDB Stream: shard iterators and GetRecords, for the stream runner.

A shard without a checkpoint starts where the runner is told (``TRIM_HORIZON`` or ``LATEST``); one
with a checkpoint resumes ``AFTER_SEQUENCE_NUMBER`` it. An expired iterator is replaced the same way.
Records the stream trimmed before they were read are reported as a gap with the sequence range lost,
and reading goes on from the oldest record left (``TRIM_HORIZON``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup.capture.stream_shards import Gap, ShardState, error_code
from ddb_backup.errors import BackupError

log = logging.getLogger(__name__)

EXPIRED = "ExpiredIteratorException"
TRIMMED = "TrimmedDataAccessException"


class ShardReader:
    """GetRecords on a shard's iterator (``ShardState.iterator``), getting a new one when it is missing,
    expired or trimmed. ``position(shard_id)`` is the checkpoint's last acknowledged record;
    ``report_gap`` hears of records lost."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        *,
        batch_size: int,
        start_at: str,
        position: Callable[[str], str | None],
        report_gap: Callable[[Gap], Gap],
    ) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.batch_size = batch_size
        self.start_at = start_at
        self.position = position
        self.report_gap = report_gap

    def new_iterator(self, state: ShardState) -> str:
        shard = state.shard
        position = self.position(shard.shard_id)
        if position and shard.starting_sequence and int(position) < int(shard.starting_sequence):
            state.pending_gap = self.report_gap(Gap(shard.shard_id, position, None, "checkpoint older than the shard"))
            position = None
        try:
            return self.iterator(shard.shard_id, "AFTER_SEQUENCE_NUMBER" if position else self.start_at, position)
        except ClientError as err:
            if error_code(err) != TRIMMED:
                raise
        state.pending_gap = self.report_gap(Gap(shard.shard_id, position, None, "trimmed before it was read"))
        return self.iterator(shard.shard_id, "TRIM_HORIZON")

    def iterator(self, shard_id: str, kind: str, sequence: str | None = None) -> str:
        args = {"StreamArn": self.stream_arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if sequence is not None:
            args["SequenceNumber"] = sequence
        return str(self.streams.get_shard_iterator(**args)["ShardIterator"])

    def get_records(self, state: ShardState) -> dict[str, Any]:
        """One GetRecords page of the shard (``Records``, ``NextShardIterator``: None once it is read to its end)."""
        for _ in range(3):
            if state.iterator is None:
                state.iterator = self.new_iterator(state)
            try:
                page: dict[str, Any] = self.streams.get_records(ShardIterator=state.iterator, Limit=self.batch_size)
                return page
            except ClientError as err:
                if error_code(err) == EXPIRED:
                    log.info("shard iterator expired; getting a new one from the checkpoint")
                elif error_code(err) == TRIMMED:
                    shard_id = state.shard.shard_id
                    state.pending_gap = self.report_gap(
                        Gap(shard_id, self.position(shard_id), None, "trimmed before it was read")
                    )
                    state.iterator = self.iterator(shard_id, "TRIM_HORIZON")
                    continue
                else:
                    raise
                state.iterator = None
        raise BackupError(f"shard {state.shard.shard_id}: GetRecords keeps failing with expired or trimmed iterators")
