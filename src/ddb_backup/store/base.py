"""Types of the object store interface."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class StoreError(Exception):
    """A request to the object store failed (after the backend's own retries)."""


class StoreUnreachable(StoreError):
    """No connection could be made to the store's endpoint, or it closed one without an answer (after
    the backend's own retries): not retried again, and the command says "cannot connect"."""


class NoSuchVersion(StoreError):
    """The object or version does not exist (or is a delete marker)."""


class PreconditionFailed(StoreError):
    """A conditional write found the object changed since it was looked at."""


class UnversionedWrite(StoreError):
    """A write S3 kept no version of: the bucket's versioning is off or suspended, so the write replaced
    the object's null version instead of adding one (docs/format.md, "The bucket")."""


Fetched = Callable[[], "StoredObject"]  # a finished GET: the object, or the error ``ObjectStore.get`` raises

VERSIONING_FIX = (
    "enable versioning on the backup bucket (aws s3api put-bucket-versioning --bucket BUCKET "
    "--versioning-configuration Status=Enabled); the record is retried until then"
)


def require_version(version_id: str | None, what: str | Callable[[], str]) -> str:
    """``version_id`` of a write every writer of backups checks; ``UnversionedWrite`` when S3 answered
    without one (``None``) or with ``null`` (a versioning-suspended bucket). ``what`` names the write
    without key values, e.g. ``PutObject of item <md5 name>``, or gives that name when called (capture:
    the item's MD5 name is worked out only when the write failed)."""
    if version_id is None or version_id in ("", "null"):
        name = what if isinstance(what, str) else what()
        raise UnversionedWrite(
            f"{name} returned no VersionId, so it replaced history instead of adding to it: {VERSIONING_FIX}"
        )
    return version_id


@dataclass(frozen=True)
class VersionEntry:
    """One row of a version listing: an object version or a delete marker."""

    key: str
    version_id: str
    last_modified: datetime
    size: int
    is_latest: bool
    is_delete_marker: bool = False
    etag: str | None = None


@dataclass(frozen=True)
class StoredObject:
    """One object version read back, with its user metadata (lower-case names)."""

    key: str
    version_id: str
    last_modified: datetime
    metadata: Mapping[str, str]
    body: bytes = b""
    size: int = 0
    etag: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class PutResult:
    version_id: str | None  # None or "null": the store kept no version (check with ``require_version``)
    etag: str | None = field(default=None)


class ObjectStore(Protocol):
    """A versioned object store (S3, or the in-memory stand-in).

    ``list_versions`` yields keys in ascending byte order and, for one key, its versions newest
    first, as S3's ListObjectVersions does; ``key_marker`` starts after that key.
    """

    def put(
        self,
        key: str,
        body: bytes,
        metadata: Mapping[str, str],
        *,
        content_type: str = "application/json",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult: ...

    def delete(self, key: str) -> str | None:
        """Add a delete marker; returns its version id."""
        ...

    def get(self, key: str, version_id: str | None = None) -> StoredObject: ...

    def head(self, key: str, version_id: str | None = None) -> StoredObject: ...

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]: ...

    def versioning_enabled(self) -> bool: ...


class RangeLister(Protocol):
    """An optional capability of a backend: a listing that ends after key ``end`` (inclusive), whose
    pages the backend sizes to end near it (S3: ``store.pages``). Yields what ``list_versions`` yields, up
    to ``end``; it may yield a few rows past ``end``, which the caller drops."""

    def list_versions_until(
        self, prefix: str, *, end: str, key_marker: str | None = None
    ) -> Iterator[VersionEntry]: ...


def list_until(store: ObjectStore, prefix: str, *, end: str, key_marker: str | None = None) -> Iterator[VersionEntry]:
    """The versions under ``prefix`` after ``key_marker`` up to key ``end``: through the backend's
    ``list_versions_until`` when it has one (``RangeLister``), else ``list_versions`` cut at ``end``."""
    until = getattr(store, "list_versions_until", None)
    entries = until(prefix, end=end, key_marker=key_marker) if until is not None else None
    if entries is None:
        entries = store.list_versions(prefix, key_marker=key_marker)
    raw_end = end.encode("utf-8")
    for entry in entries:
        if entry.key.encode("utf-8") > raw_end:  # S3 orders keys by their UTF-8 bytes
            return
        yield entry
