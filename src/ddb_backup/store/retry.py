"""Retries of the object store's reads, as a wrapper (not sprinkled through the readers).

botocore already retries each request; this covers what is left when those retries are spent
(a long SlowDown, a dropped connection): reads are idempotent, so readers such as restore,
export and verify try again with exponential backoff and full jitter. Writes pass through once:
capture's writes are retried by Lambda's own redelivery, in order.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from ddb_backup.aws.clients import UNREACHABLE
from ddb_backup.store.base import (
    NoSuchVersion,
    ObjectStore,
    PreconditionFailed,
    PutResult,
    StoredObject,
    StoreError,
    StoreUnreachable,
    VersionEntry,
    list_until,
)

T = TypeVar("T")
DEFAULT_ATTEMPTS = 6
BASE_DELAY = 0.05
MAX_DELAY = 5.0


class RetryingStore:
    """``inner`` with every read retried up to ``attempts`` times on a transient ``StoreError``."""

    def __init__(
        self,
        inner: ObjectStore,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.attempts = attempts
        self._sleep = sleep
        self._random = rng or random.Random()
        self.retries = 0

    def _retry(self, call: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except (NoSuchVersion, PreconditionFailed):
                raise  # answers, not faults
            except StoreError as err:
                if attempt == self.attempts or _unreachable(err):
                    raise  # an unreachable endpoint: the client already retried it (aws/clients.py's one policy)
                self.retries += 1
                self._sleep(self._random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2**attempt)))
        raise AssertionError("unreachable")

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
        return self.inner.put(
            key, body, metadata, content_type=content_type, if_match=if_match, if_none_match=if_none_match
        )

    def delete(self, key: str) -> str | None:
        return self.inner.delete(key)

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        return self._retry(lambda: self.inner.get(key, version_id))

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        return self._retry(lambda: self.inner.head(key, version_id))

    def versioning_enabled(self) -> bool:
        return self._retry(self.inner.versioning_enabled)

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        """A listing that survives a failed page: it starts again after the last key it finished and
        skips the versions of the current key it already gave."""
        return self._listing(lambda marker: self.inner.list_versions(prefix, key_marker=marker), key_marker)

    def list_versions_until(self, prefix: str, *, end: str, key_marker: str | None = None) -> Iterator[VersionEntry]:
        """``list_versions`` ending after key ``end`` (``store.base.list_until``), retried alike."""
        return self._listing(lambda marker: list_until(self.inner, prefix, end=end, key_marker=marker), key_marker)

    def _listing(
        self, listing: Callable[[str | None], Iterator[VersionEntry]], key_marker: str | None
    ) -> Iterator[VersionEntry]:
        finished = key_marker  # the last key all of whose versions were yielded
        current: str | None = None
        given = 0  # versions of ``current`` already yielded
        failures = 0
        while True:
            try:
                skip = given
                for entry in listing(finished):
                    if entry.key != current:
                        finished = current if current is not None else finished
                        current, given, skip = entry.key, 0, 0
                    if skip:
                        skip -= 1
                        continue
                    given += 1
                    failures = 0
                    yield entry
                return
            except (NoSuchVersion, PreconditionFailed):
                raise
            except StoreError as err:
                failures += 1
                if failures >= self.attempts or _unreachable(err):
                    raise
                self.retries += 1
                self._sleep(self._random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2**failures)))


def _unreachable(err: StoreError) -> bool:
    return isinstance(err, StoreUnreachable) or isinstance(err.__cause__, UNREACHABLE)


def soon_getter(store: ObjectStore) -> Callable[..., Any] | None:
    """The ``get_soon`` (``store.native.NativeS3Store``: a GET with no thread waiting on it) of the store
    under ``store``'s retries, or None when its client has none. It is not retried here: a reader whose
    GET failed reads again through ``store.get`` (``restore.resolve.Resolver.resolve``)."""
    inner = store.inner if isinstance(store, RetryingStore) else store
    return getattr(inner, "get_soon", None)
