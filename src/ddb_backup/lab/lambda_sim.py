"""Lambda's delivery of one stream shard, simulated: batches, partial batch responses, retries.

What Lambda does with an event source mapping that has ``ReportBatchItemFailures`` on, as AWS
documents it, and what this module reproduces:

- records of a shard arrive in order, in batches of at most ``batch_size``;
- a response listing ``batchItemFailures`` makes the record with the lowest listed sequence number the
  checkpoint, and the batch is retried from there (records before it are done);
- a response whose identifiers are empty, absent from the batch or malformed, and an invocation that
  raises, fail the whole batch: it is retried from its first record;
- a retry may land on a new container (a cold start: a fresh function with no memory).

``ShardDelivery`` raises ``DidNotConverge`` when one batch needs more than ``max_attempts``
invocations: where Lambda would, after ``MaximumRetryAttempts``, hand the batch to its on-failure
destination, a test fails.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ddb_backup.capture.engine import Capture

Record = Mapping[str, Any]
ERROR_SAMPLE = 20  # errors kept for the report; the rest are only counted


class Function(Protocol):
    """A deployed function: records in, Lambda's partial batch response out."""

    def __call__(self, records: list[Record]) -> Mapping[str, Any]: ...


class DidNotConverge(RuntimeError):
    """One batch kept failing for ``max_attempts`` invocations."""


@dataclass
class DeliveryStats:
    """What the delivery took; ``errors`` keeps the first few messages only (memory stays flat)."""

    records: int = 0
    batches: int = 0
    invocations: int = 0
    retries: int = 0
    cold_starts: int = 0
    records_delivered: int = 0
    partial_failures: int = 0
    whole_batch_failures: int = 0
    errors: list[str] = field(default_factory=list)

    def note_error(self, message: str) -> None:
        if len(self.errors) < ERROR_SAMPLE:
            self.errors.append(message)


class CaptureFunction:
    """A ``Capture`` deployed as a function; ``close`` ends its thread pool (the container goes away)."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def __call__(self, records: list[Record]) -> Mapping[str, Any]:
        return self.capture.process(records).lambda_response()

    def close(self) -> None:
        self.capture.close()


class ShardDelivery:
    """Delivers records to a function as Lambda does; ``start_function`` makes a fresh container."""

    def __init__(
        self,
        start_function: Callable[[], Function],
        *,
        batch_size: int = 100,
        max_attempts: int = 20,
        cold_start_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        if batch_size < 1 or max_attempts < 1:
            raise ValueError("batch_size and max_attempts must be at least 1")
        self._start_function = start_function
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.cold_start_rate = cold_start_rate
        self._rng = random.Random(seed)
        self.function = start_function()
        self.stats = DeliveryStats()

    def deliver(self, records: Sequence[Record]) -> DeliveryStats:
        """Deliver every record, batch after batch, retrying each batch until it succeeds."""
        for start in range(0, len(records), self.batch_size):
            self._deliver_batch(list(records[start : start + self.batch_size]))
        return self.stats

    def close(self) -> None:
        _close(self.function)

    def _deliver_batch(self, batch: list[Record]) -> None:
        self.stats.batches += 1
        self.stats.records += len(batch)
        for attempt in range(1, self.max_attempts + 1):
            retry_from = self._invoke(batch)
            if retry_from is None:
                return
            if attempt == self.max_attempts:
                raise DidNotConverge(
                    f"a batch of {len(batch)} records still failed after {attempt} invocations; "
                    f"first errors: {self.stats.errors[:3]}"
                )
            batch = batch[retry_from:]
            self.stats.retries += 1
            if self._rng.random() < self.cold_start_rate:
                self._cold_start()

    def _invoke(self, batch: list[Record]) -> int | None:
        """One invocation; the index to retry from, or ``None`` when the batch is done."""
        self.stats.invocations += 1
        self.stats.records_delivered += len(batch)
        try:
            response = self.function(batch)
        except Exception as err:  # Lambda retries the whole batch after an invocation error
            self.stats.whole_batch_failures += 1
            self.stats.note_error(f"invocation raised {type(err).__name__}: {err}")
            return 0
        retry_from = checkpoint(batch, response)
        if retry_from == 0 and not _lists_first_record(batch, response):
            self.stats.whole_batch_failures += 1
            self.stats.note_error(f"the response fails the whole batch: {dict(response)!r:.200}")
        elif retry_from is not None:
            self.stats.partial_failures += 1
        return retry_from

    def _cold_start(self) -> None:
        _close(self.function)
        self.function = self._start_function()
        self.stats.cold_starts += 1


def checkpoint(batch: Sequence[Record], response: Any) -> int | None:
    """Where Lambda retries ``batch`` from, given the function's response: ``None`` if it succeeded,
    else the index of the lowest listed sequence number (0: the whole batch, when a listed
    identifier is not a sequence number of the batch, or the response is malformed)."""
    if response is None:
        return None
    failures = response.get("batchItemFailures") if isinstance(response, Mapping) else None
    if failures is None:
        return None if isinstance(response, Mapping) else 0
    if not isinstance(failures, list):
        return 0
    if not failures:
        return None
    positions = {_sequence(record): index for index, record in enumerate(batch)}
    indexes = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not identifier or identifier not in positions:
            return 0
        indexes.append(positions[identifier])
    return min(indexes)


def _lists_first_record(batch: Sequence[Record], response: Any) -> bool:
    failures = response.get("batchItemFailures") if isinstance(response, Mapping) else None
    first = _sequence(batch[0]) if batch else None
    return isinstance(failures, list) and any(
        isinstance(failure, Mapping) and failure.get("itemIdentifier") == first for failure in failures
    )


def _sequence(record: Record) -> str | None:
    dynamodb = record.get("dynamodb") if isinstance(record, Mapping) else None
    value = dynamodb.get("SequenceNumber") if isinstance(dynamodb, Mapping) else None
    return None if value is None else str(value)


def _close(function: Function) -> None:
    close = getattr(function, "close", None)
    if callable(close):
        close()
