"""Fault injection around the object store and the DynamoDB client (tests, benchmarks, ``--chaos``).

``FaultyStore`` wraps any ``ObjectStore`` and makes some requests fail the way S3 fails once
botocore's own retries are spent: 500 InternalError, 503 SlowDown, a timeout, a connection reset,
or a write that S3 performed but whose answer never came back. ``FaultyDynamoDB`` wraps a boto3
DynamoDB client and throttles writes or leaves part of a ``BatchWriteItem`` unprocessed, in the
shapes AWS documents.

Both are deterministic for a seed, and thread-safe: the outcome of a request depends only on the
seed, the request's identity (operation and key, or the request's content) and how many times that
same request was made before, never on how threads interleave. Both count what they injected.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup.store.base import ObjectStore, PutResult, StoredObject, StoreError, VersionEntry

# Kinds of object store faults.
INTERNAL_ERROR = "internal_error"
SLOW_DOWN = "slow_down"
TIMEOUT = "timeout"
CONNECTION_RESET = "connection_reset"
LOST_RESPONSE = "lost_response"
STORE_FAULTS = (INTERNAL_ERROR, SLOW_DOWN, TIMEOUT, CONNECTION_RESET, LOST_RESPONSE)

# Kinds of DynamoDB faults.
THROTTLE = "throttle"
UNPROCESSED = "unprocessed"

# The text S3Store puts after "Operation s3://bucket/key: " for each fault (botocore's own wording).
_STORE_MESSAGES = {
    INTERNAL_ERROR: "InternalError",
    SLOW_DOWN: "SlowDown",
    TIMEOUT: 'Read timeout on endpoint URL: "None"',
    CONNECTION_RESET: 'Connection was closed before we received a valid response from endpoint URL: "None".',
    LOST_RESPONSE: 'Read timeout on endpoint URL: "None"',
}

# How many distinct requests the dice remember attempt counts for (least recently used out).
ATTEMPT_MEMORY = 100_000

_THROTTLE_MESSAGES = {
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API."
    ),
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
}


class FaultDice:
    """Decides, per request, whether to inject a fault and which, from rates that add up to at most 1.

    ``roll(*identity)`` returns ``(kind or None, rng)``; ``rng`` is seeded from the seed, the identity
    and the attempt number of that identity, so the same run gives the same faults however threads
    interleave. ``counts`` says how many of each kind were injected.
    """

    def __init__(self, rates: Mapping[str, float], seed: int = 0, *, memory: int = ATTEMPT_MEMORY) -> None:
        for kind, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {kind}={rate} is not between 0 and 1")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise ValueError(f"fault rates add up to {sum(rates.values()):.3f}, more than 1")
        self.rates = dict(rates)
        self.seed = seed
        self.counts: Counter[str] = Counter()
        self.requests = 0
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._memory = memory
        self._lock = threading.Lock()

    def roll(self, *identity: str) -> tuple[str | None, random.Random]:
        name = "\x00".join(identity)
        with self._lock:
            attempt = self._attempts.get(name, 0)
            self._attempts[name] = attempt + 1
            self._attempts.move_to_end(name)
            if len(self._attempts) > self._memory:
                self._attempts.popitem(last=False)
            self.requests += 1
        rng = random.Random(f"{self.seed}\x00{name}\x00{attempt}")
        kind = _pick(self.rates, rng.random())
        if kind is not None:
            with self._lock:
                self.counts[kind] += 1
        return kind, rng

    def reclassify(self, rolled: str, injected: str) -> None:
        """Count a fault that was rolled as one kind but injected as another."""
        with self._lock:
            self.counts[rolled] -= 1
            self.counts[injected] += 1

    @property
    def injected(self) -> int:
        with self._lock:
            return sum(self.counts.values())


def _pick(rates: Mapping[str, float], draw: float) -> str | None:
    edge = 0.0
    for kind, rate in rates.items():
        edge += rate
        if draw < edge:
            return kind
    return None


class InjectedFault(StoreError):
    """A store request failed by injection; ``kind`` says how (one of ``STORE_FAULTS``)."""

    def __init__(self, kind: str, operation: str, key: str) -> None:
        super().__init__(f"{operation} {key}: {_STORE_MESSAGES[kind]} (injected {kind})")
        self.kind = kind


class FaultyStore:
    """An ``ObjectStore`` that fails some requests, at the given rates, before (or, for a lost
    response, after) passing them to ``inner``.

    Writes (put, delete) can get every kind of fault; reads (get, head, each page of a listing,
    the versioning check) every kind but a lost response, which only a write can have.
    """

    def __init__(
        self,
        inner: ObjectStore,
        *,
        internal_error: float = 0.0,
        slow_down: float = 0.0,
        timeout: float = 0.0,
        connection_reset: float = 0.0,
        lost_response: float = 0.0,
        seed: int = 0,
        page_size: int = 1000,
    ) -> None:
        self.inner = inner
        rates = {
            INTERNAL_ERROR: internal_error,
            SLOW_DOWN: slow_down,
            TIMEOUT: timeout,
            CONNECTION_RESET: connection_reset,
            LOST_RESPONSE: lost_response,
        }
        self.dice = FaultDice(rates, seed)
        read_rates = {kind: rate for kind, rate in rates.items() if kind != LOST_RESPONSE}
        self._read_dice = FaultDice(read_rates, seed + 1)
        self._page_size = page_size

    @classmethod
    def with_fault_rate(cls, inner: ObjectStore, rate: float, *, seed: int = 0) -> FaultyStore:
        """``rate`` of all requests fail, spread evenly over the five kinds of fault."""
        share = rate / len(STORE_FAULTS)
        return cls(
            inner,
            internal_error=share,
            slow_down=share,
            timeout=share,
            connection_reset=share,
            lost_response=share,
            seed=seed,
        )

    @property
    def counts(self) -> Counter[str]:
        """Faults injected so far, by kind."""
        return self.dice.counts + self._read_dice.counts

    @property
    def injected(self) -> int:
        return self.dice.injected + self._read_dice.injected

    def _before(self, operation: str, key: str, *, write: bool) -> bool:
        """Raise a fault that stops the request; ``True`` if the request must run and then lose its answer."""
        kind, _ = (self.dice if write else self._read_dice).roll(operation, key)
        if kind is None:
            return False
        if kind == LOST_RESPONSE:
            return True
        raise InjectedFault(kind, operation, key)

    def put(
        self,
        key: str,
        body: bytes,
        metadata: Mapping[str, str],
        *,
        content_type: str = "application/json",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        lose = self._before("PutObject", key, write=True)
        result = self.inner.put(
            key, body, metadata, content_type=content_type, if_match=if_match, if_none_match=if_none_match
        )
        if lose:
            raise InjectedFault(LOST_RESPONSE, "PutObject", key)
        return result

    def delete(self, key: str) -> str | None:
        lose = self._before("DeleteObject", key, write=True)
        version_id = self.inner.delete(key)
        if lose:
            raise InjectedFault(LOST_RESPONSE, "DeleteObject", key)
        return version_id

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        self._before("GetObject", key, write=False)
        return self.inner.get(key, version_id)

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        self._before("HeadObject", key, write=False)
        return self.inner.head(key, version_id)

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        """Each page (``page_size`` entries) may fail, as each ListObjectVersions call of S3Store may."""
        start = key_marker or ""
        self._before("ListObjectVersions", f"{prefix}\x00{start}", write=False)
        for listed, entry in enumerate(self.inner.list_versions(prefix, key_marker=key_marker), start=1):
            yield entry
            if listed % self._page_size == 0:
                self._before("ListObjectVersions", f"{prefix}\x00{entry.key}\x00{entry.version_id}", write=False)

    def versioning_enabled(self) -> bool:
        self._before("GetBucketVersioning", "", write=False)
        return self.inner.versioning_enabled()


# -- DynamoDB -------------------------------------------------------------------------------------


def throttling_error(
    operation: str, code: str = "ProvisionedThroughputExceededException", client: Any = None
) -> ClientError:
    """The error boto3 raises when DynamoDB throttles a request (HTTP 400): the client's modeled
    exception class for ``code`` (a ``ClientError``), or a plain ``ClientError`` without a client."""
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": _THROTTLE_MESSAGES[code]},
        "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": 0},
    }
    exceptions = getattr(client, "exceptions", None)
    error_class = exceptions.from_code(code) if exceptions is not None else ClientError
    error: ClientError = error_class(response, operation)
    return error


def _fingerprint(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


class FaultyDynamoDB:
    """A boto3 DynamoDB client that throttles writes and leaves parts of batches unprocessed.

    ``batch_write_item`` either raises a throttling ``ClientError`` and writes nothing
    (``throttle_rate``), or writes part of the request and returns the rest as ``UnprocessedItems``
    (``unprocessed_rate``); a one-request batch cannot be split, so it is throttled instead (AWS also
    throttles, rather than answer "all unprocessed", when it can process nothing). ``put_item`` and
    ``delete_item`` are throttled at ``throttle_rate``. Every other attribute is the client's own.
    """

    def __init__(
        self,
        client: Any,
        *,
        throttle_rate: float = 0.0,
        unprocessed_rate: float = 0.0,
        seed: int = 0,
        throttle_code: str = "ProvisionedThroughputExceededException",
    ) -> None:
        if throttle_code not in _THROTTLE_MESSAGES:
            raise ValueError(f"throttle_code must be one of {sorted(_THROTTLE_MESSAGES)}")
        self.client = client
        self.throttle_code = throttle_code
        self.dice = FaultDice({THROTTLE: throttle_rate, UNPROCESSED: unprocessed_rate}, seed)
        self._single_dice = FaultDice({THROTTLE: throttle_rate}, seed + 1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    @property
    def counts(self) -> Counter[str]:
        """Faults injected so far, by kind."""
        return self.dice.counts + self._single_dice.counts

    @property
    def injected(self) -> int:
        return self.dice.injected + self._single_dice.injected

    def _throttle(self, operation: str) -> ClientError:
        return throttling_error(operation, self.throttle_code, self.client)

    def put_item(self, **kwargs: Any) -> Any:
        self._single("PutItem", kwargs)
        return self.client.put_item(**kwargs)

    def delete_item(self, **kwargs: Any) -> Any:
        self._single("DeleteItem", kwargs)
        return self.client.delete_item(**kwargs)

    def _single(self, operation: str, kwargs: Mapping[str, Any]) -> None:
        kind, _ = self._single_dice.roll(operation, _fingerprint(kwargs))
        if kind is not None:
            raise self._throttle(operation)

    def batch_write_item(self, **kwargs: Any) -> Any:
        request_items: Mapping[str, list[Any]] = kwargs["RequestItems"]
        kind, rng = self.dice.roll("BatchWriteItem", _fingerprint(request_items))
        requests = [(table, request) for table, batch in request_items.items() for request in batch]
        if kind == UNPROCESSED and len(requests) < 2:
            self.dice.reclassify(UNPROCESSED, THROTTLE)
            kind = THROTTLE
        if kind == THROTTLE:
            raise self._throttle("BatchWriteItem")
        if kind is None:
            return self.client.batch_write_item(**kwargs)
        left = set(rng.sample(range(len(requests)), rng.randint(1, len(requests) - 1)))
        done = _group([pair for index, pair in enumerate(requests) if index not in left])
        answer = dict(self.client.batch_write_item(**{**kwargs, "RequestItems": done}))
        unprocessed = _group([pair for index, pair in enumerate(requests) if index in left])
        for table, batch in answer.get("UnprocessedItems", {}).items():
            unprocessed.setdefault(table, []).extend(batch)
        answer["UnprocessedItems"] = unprocessed
        return answer


def _group(pairs: list[tuple[str, Any]]) -> dict[str, list[Any]]:
    """``[(table, request), ...]`` back to ``{table: [request, ...]}``, keeping order."""
    grouped: dict[str, list[Any]] = {}
    for table, request in pairs:
        grouped.setdefault(table, []).append(request)
    return grouped
