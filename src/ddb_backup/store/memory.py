"""An in-memory versioned object store: the fast stand-in for S3 in tests and benchmarks.

It behaves as S3 does where our code can tell (listing order, delete markers, conditional
writes) and can add a fixed latency to every request to model a network.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from ddb_backup.store.base import NoSuchVersion, PreconditionFailed, PutResult, StoredObject, VersionEntry

LIST_PAGE_SIZE = 1000


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


class MemoryStore:
    """Versions kept per key, oldest first; ``clock`` stamps ``last_modified`` (S3's write time)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utc_now,
        latency: float = 0.0,
        versioning: bool = True,
    ) -> None:
        self._clock = clock
        self._latency = latency
        self._versioning = versioning
        self._versions: dict[str, list[StoredObject]] = {}
        self._sorted_keys: list[bytes] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.requests = 0

    def _request(self) -> None:
        self.requests += 1  # a counter for tests and benchmarks; races only blur it
        if self._latency:
            time.sleep(self._latency)

    def _append(self, key: str, version: StoredObject) -> None:
        """Add a version; the caller holds the lock."""
        versions = self._versions.get(key)
        if versions is None:
            versions = self._versions[key] = []
            bisect.insort(self._sorted_keys, key.encode("utf-8"))
        versions.append(version)

    def _new_version(self, key: str, **fields: object) -> StoredObject:
        version = StoredObject(key=key, version_id=f"v{next(self._ids):012d}", last_modified=self._clock(), metadata={})
        return replace(version, **fields)  # type: ignore[arg-type]

    def _current(self, key: str) -> StoredObject | None:
        versions = self._versions.get(key)
        if not versions or versions[-1].etag is None:  # a delete marker has no etag
            return None
        return versions[-1]

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
        self._request()
        etag = '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'
        version = self._new_version(
            key,
            metadata={name.lower(): value for name, value in metadata.items()},
            body=bytes(body),
            size=len(body),
            etag=etag,
            content_type=content_type,
        )
        with self._lock:
            current = self._current(key)
            if if_none_match and current is not None:
                raise PreconditionFailed(f"{key} exists")
            if if_match is not None and (current is None or current.etag != if_match):
                raise PreconditionFailed(f"{key} changed")
            version = self._append_or_replace_null(key, version)
        return PutResult(version.version_id, etag)

    def delete(self, key: str) -> str | None:
        self._request()
        marker = self._new_version(key)
        with self._lock:
            marker = self._append_or_replace_null(key, marker)
        return marker.version_id

    def _append_or_replace_null(self, key: str, version: StoredObject) -> StoredObject:
        """Add a version; without versioning (off or suspended) it is S3's ``null`` version, which
        replaces the key's previous null version while versions with real ids stay. Caller holds the lock."""
        if not self._versioning:
            version = replace(version, version_id="null")
            if key in self._versions:
                self._versions[key][:] = [old for old in self._versions[key] if old.version_id != "null"]
        self._append(key, version)
        return version

    def set_versioning(self, enabled: bool) -> None:
        """Turn versioning on or off (suspended) from now on, as PutBucketVersioning does."""
        self._versioning = enabled

    def _find(self, key: str, version_id: str | None) -> StoredObject:
        versions = self._versions.get(key, [])
        if version_id is None:
            current = self._current(key)
            if current is None:
                raise NoSuchVersion(f"{key} has no current version")
            return current
        for version in versions:
            if version.version_id == version_id and version.etag is not None:
                return version
        raise NoSuchVersion(f"{key} has no version {version_id}")

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        self._request()
        return self._find(key, version_id)

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        self._request()
        return replace(self._find(key, version_id), body=b"")

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        with self._lock:
            keys = list(self._sorted_keys)
        start = bisect.bisect_right(keys, key_marker.encode("utf-8")) if key_marker else 0
        start = max(start, bisect.bisect_left(keys, prefix.encode("utf-8")))
        listed = 0
        for raw_key in itertools.islice(keys, start, None):
            key = raw_key.decode("utf-8")
            if not key.startswith(prefix):
                break
            versions = self._versions[key]
            for index in range(len(versions) - 1, -1, -1):
                if listed % LIST_PAGE_SIZE == 0:
                    self._request()
                listed += 1
                yield _entry(versions[index], is_latest=index == len(versions) - 1)

    def versioning_enabled(self) -> bool:
        self._request()
        return self._versioning


def _entry(version: StoredObject, *, is_latest: bool) -> VersionEntry:
    return VersionEntry(
        key=version.key,
        version_id=version.version_id,
        last_modified=version.last_modified,
        size=version.size,
        is_latest=is_latest,
        is_delete_marker=version.etag is None,
        etag=version.etag,
    )
