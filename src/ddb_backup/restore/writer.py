"""Writing items to DynamoDB: BatchWriteItem in 25s, retried until done, at a bounded rate.

``UnprocessedItems`` and throttling errors are retried with exponential backoff and full jitter
until the batch is written or a bounded time has passed (then a ``BackupError`` says how to resume).
A token bucket in write units (1 unit per started KB of item) shared by every writer thread keeps
the write rate; a bounded pool keeps the concurrency.

A ``ValidationException`` rejects a whole batch for one bad item (AWS: "BatchWriteItem", errors), so
the batch is split in halves until the item(s) at fault stand alone; those are handed to ``on_reject``
with DynamoDB's reason and every other item is written. Once ``stop`` is set no new request is
sent: batches not yet sent are dropped (their ``done`` callbacks never run), retries end.
"""

from __future__ import annotations

import base64
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ddb_backup.aws.ratelimit import TokenBucket
from ddb_backup.errors import BackupError
from ddb_backup.format import keys as k

MAX_BATCH = 25
RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
DEFAULT_MAX_RETRY_SECONDS = 600.0
BACKOFF_BASE = 0.05
BACKOFF_CAP = 10.0
WAIT_TICK = 0.2  # seconds between progress calls while draining
RESUME_HINT = "run the same command again with --resume (lower --write-rate or raise the table's capacity first)"
READ_RESUME_HINT = "run the same command again with --resume"  # S3 failed, not the writes

Done = Callable[[], None]


# -- item sizes and the client's item shape ------------------------------------------------------


def value_size(value: Mapping[str, Any]) -> int:
    """DynamoDB's size of one typed value, in bytes (an estimate for numbers, as AWS documents)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode("utf-8"))
    if kind == "N":
        return len(str(raw).lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(raw) * 3 // 4 if isinstance(raw, str) else len(raw)
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: member}) for member in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(member) for member in raw)
    if kind == "M":
        return 3 + sum(len(name.encode("utf-8")) + 1 + value_size(member) for name, member in raw.items())
    return 1  # BOOL, NULL


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(item: Mapping[str, Any]) -> int:
    """Write capacity units of one put: 1 per started KB."""
    return max(1, math.ceil(item_size(item) / 1024))


def to_client_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """A stored value (binary as base64 text, as in stream events) as boto3 takes it (binary as bytes)."""
    ((kind, raw),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(raw) if isinstance(raw, str) else raw}
    if kind == "BS":
        return {"BS": [base64.b64decode(member) if isinstance(member, str) else member for member in raw]}
    if kind == "L":
        return {"L": [to_client_value(member) for member in raw]}
    if kind == "M":
        return {"M": {name: to_client_value(member) for name, member in raw.items()}}
    return {kind: raw}


def to_client_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_client_value(value) for name, value in item.items()}


def key_of(item: Mapping[str, Any], schema: k.KeySchema) -> dict[str, Any]:
    """The key attributes of an item (as stored: binary as base64 text)."""
    return {name: item[name] for name in schema.attribute_names}


def key_identity(key: Mapping[str, Any]) -> str:
    return k.key_json(key)


# -- rate ----------------------------------------------------------------------------------------


# -- batches -------------------------------------------------------------------------------------


@dataclass
class _Request:
    body: dict[str, Any]  # {"PutRequest": ...} or {"DeleteRequest": ...}
    units: int
    done: list[Done] = field(default_factory=list)
    stored: Mapping[str, Any] | None = None  # the item or key as stored (binary as base64), for rejects


Reject = Callable[[str, Mapping[str, Any], str], None]  # (kind "put"/"delete", item or key as stored, reason)


class Stopped(Exception):
    """Raised inside a writer thread when ``stop`` is set: the batch is left unwritten."""


class _Invalid(Exception):
    """DynamoDB rejected the request (``ValidationException``): something in the batch cannot be written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class WriteStats:
    puts: int = 0
    deletes: int = 0
    batches: int = 0
    retries: int = 0  # requests sent again (unprocessed or throttled)
    throttled: int = 0  # throttling errors answered
    rejected: int = 0  # requests DynamoDB refused (ValidationException), handed to on_reject


class BatchWriter:
    """Collects puts and deletes into batches of 25 and writes them on a bounded pool.

    ``done`` callbacks run once their request is written or rejected. The first failure is raised by
    the next ``put``/``delete`` and by ``drain``/``close``. Within a batch a key appears once (a later
    request for the same key replaces the earlier one, as a later write would).
    """

    def __init__(
        self,
        client: Any,
        table: str,
        schema: k.KeySchema,
        *,
        workers: int = 4,
        batch_size: int = MAX_BATCH,
        limiter: TokenBucket | None = None,
        max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS,
        sleep: Callable[[float], object] | None = None,  # default: waits on ``stop``, so a stop ends it
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_reject: Reject | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.client, self.table, self.schema = client, table, schema
        self.on_reject, self.stop = on_reject, stop or threading.Event()
        self.limiter = limiter
        self.max_retry_seconds = max_retry_seconds
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self._sleep, self._clock, self._rng = sleep or self.stop.wait, clock, rng or random.Random()
        self.stats = WriteStats()
        self._batch: dict[str, _Request] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(workers * 2)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="write")
        self._futures: set[Future[None]] = set()
        self._error: BaseException | None = None

    def put(self, item: Mapping[str, Any], done: Done | None = None) -> None:
        body = {"PutRequest": {"Item": to_client_item(item)}}
        self._add(key_identity(key_of(item, self.schema)), _Request(body, write_units(item), stored=item), done)

    def delete(self, key: Mapping[str, Any], done: Done | None = None) -> None:
        body = {"DeleteRequest": {"Key": to_client_item(key)}}
        self._add(key_identity(key), _Request(body, 1, stored=key), done)

    def reject(self, item: Mapping[str, Any], reason: str, done: Done | None = None) -> None:
        """Set aside an item found unwritable before sending it (as if DynamoDB had refused it)."""
        self._rejected(_Request({"PutRequest": {}}, 0, [done] if done else [], stored=item), reason)

    def _add(self, identity: str, request: _Request, done: Done | None) -> None:
        self.raise_failure()
        if self.stop.is_set():
            return  # stopping: nothing new is sent
        if done is not None:
            request.done.append(done)
        with self._lock:
            earlier = self._batch.pop(identity, None)
            if earlier is not None:
                request.done[:0] = earlier.done
            self._batch[identity] = request
            full = self._take() if len(self._batch) >= self.batch_size else None
        if full:
            self._submit(full)

    def _take(self) -> list[_Request]:
        batch, self._batch = list(self._batch.values()), {}
        return batch

    def _submit(self, batch: list[_Request]) -> None:
        while not self._slots.acquire(timeout=0.1):
            if self.stop.is_set():
                return
        future = self._pool.submit(self._write, batch)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._finished)

    def _finished(self, future: Future[None]) -> None:
        self._slots.release()
        with self._lock:
            self._futures.discard(future)
        error = future.exception()
        if error is not None and self._error is None:
            self._error = error

    def raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        """Send the partial batch."""
        with self._lock:
            batch = self._take()
        if batch:
            self._submit(batch)

    def drain(self, on_wait: Callable[[], None] | None = None) -> None:
        """Flush and wait until every batch sent so far is acknowledged (or dropped after ``stop``);
        raise the first failure. Every ``done`` of a written request has run when this returns.
        ``on_wait`` is called about every ``WAIT_TICK`` seconds meanwhile (progress)."""
        self.flush()
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending:
                break
            wait(pending, timeout=WAIT_TICK)
            if on_wait is not None:
                on_wait()
        self.raise_failure()

    def close(self) -> None:
        """``drain``, then end the pool."""
        try:
            self.drain()
        finally:
            self._pool.shutdown(wait=True)

    def abort(self, *, wait_for_sent: bool = True) -> None:
        """End after a failure: batches not yet started are dropped, and the batches being sent are
        waited for (each ends within the client's own timeouts and retries), so nothing is still being
        written when this returns and the caller may read the table at once. ``wait_for_sent=False``
        (a second Ctrl-C) returns at once; Python still waits for those threads before the process exits."""
        self._pool.shutdown(wait=wait_for_sent, cancel_futures=True)

    # -- one batch, retried ------------------------------------------------------------------------

    def _write(self, batch: list[_Request]) -> None:
        if self._error is not None:
            return  # another batch failed: stop spending capacity
        try:
            self._write_or_split(batch)
        except Stopped:
            return

    def _write_or_split(self, batch: list[_Request]) -> None:
        """Write the batch; when DynamoDB calls it invalid, halve it until the bad requests stand alone."""
        try:
            self._write_retrying(batch)
        except _Invalid as invalid:
            if len(batch) == 1:
                self._rejected(batch[0], invalid.reason)
                return
            middle = len(batch) // 2
            self._write_or_split(batch[:middle])
            self._write_or_split(batch[middle:])
            return
        with self._lock:
            self.stats.batches += 1
            for request in batch:
                if "PutRequest" in request.body:
                    self.stats.puts += 1
                else:
                    self.stats.deletes += 1
        for request in batch:
            for done in request.done:
                done()

    def _rejected(self, request: _Request, reason: str) -> None:
        with self._lock:
            self.stats.rejected += 1
        if self.on_reject is None:
            raise BackupError(f"DynamoDB refused an item of {self.table!r}: {reason}", "fix the item or the table")
        kind = "put" if "PutRequest" in request.body else "delete"
        self.on_reject(kind, request.stored or {}, reason)
        for done in request.done:
            done()

    def _write_retrying(self, batch: list[_Request]) -> None:
        pending = [request.body for request in batch]
        units = {id(request.body): request.units for request in batch}
        started, attempt = self._clock(), 0
        while pending:
            if self.limiter is not None:
                if not self.limiter.wait(self.stop):
                    raise Stopped()
                self.limiter.spend(sum(units.get(id(body), 1) for body in pending))
            if self.stop.is_set():
                raise Stopped()
            pending = self._attempt(pending)
            if not pending:
                break
            attempt += 1
            self._retry_wait(attempt, started, len(pending))

    def _attempt(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One BatchWriteItem; returns what is left to write (the same dicts, so units stay known)."""
        try:
            answer = self.client.batch_write_item(RequestItems={self.table: requests})
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code == "ValidationException":
                raise _Invalid(str(err.response.get("Error", {}).get("Message", "") or err)) from err
            if code not in RETRYABLE:
                raise BackupError(f"BatchWriteItem on {self.table!r} failed: {code}: {err}", RESUME_HINT) from err
            with self._lock:
                self.stats.throttled += 1
            return requests
        except BotoCoreError as err:
            raise BackupError(f"BatchWriteItem on {self.table!r} failed: {err}", RESUME_HINT) from err
        unprocessed = answer.get("UnprocessedItems", {}).get(self.table, [])
        return _same_requests(requests, unprocessed)

    def _retry_wait(self, attempt: int, started: float, left: int) -> None:
        elapsed = self._clock() - started
        if elapsed > self.max_retry_seconds:
            raise BackupError(
                f"BatchWriteItem on {self.table!r}: {left} items still unwritten after {elapsed:.0f} s of "
                "throttling or unprocessed items",
                RESUME_HINT,
            )
        with self._lock:
            self.stats.retries += left
        self._sleep(self._rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
        if self.stop.is_set():
            raise Stopped()


def _same_requests(sent: list[dict[str, Any]], unprocessed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sent request dicts equal to the unprocessed ones (AWS answers copies)."""
    if not unprocessed:
        return []
    left = list(unprocessed)
    same = []
    for request in sent:
        if request in left:
            left.remove(request)
            same.append(request)
    return same + left  # anything unmatched is retried as answered
