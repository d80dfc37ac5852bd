"""Capture: turn a batch of stream records into backup versions (docs/format.md, "Writing").

One item's records are written in stream order; different items concurrently, on a bounded
pool. After a record of an item fails, no later record of that item is written; the batch
response names the failed records, lowest sequence number first, so Lambda retries from there.
A record already written by an earlier delivery (a retry's replay) is skipped, never re-applied.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from ddb_backup.capture import privacy
from ddb_backup.capture.records import BadRecord, StreamRecord
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.store import (
    NoSuchVersion,
    ObjectStore,
    PreconditionFailed,
    StoreError,
    VersionEntry,
    require_version,
)

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 64
REPLAY_CACHE_SIZE = 100_000
WRITE_ATTEMPTS = 3  # conditional writes of one object per record before the record fails

SchemaLookup = Callable[[str], k.KeySchema]


@dataclass(frozen=True)
class CaptureSettings:
    """How objects are named: the handler's settings less the bucket."""

    prefix: str = ""
    plain_text: bool = False
    tenant_column: str | None = None
    workers: int = DEFAULT_WORKERS


@dataclass
class BatchReport:
    """What one batch did: the Lambda response plus the counts behind the metrics."""

    failures: list[str] = field(default_factory=list)  # sequence numbers, lowest first
    written: int = 0
    replays_skipped: int = 0
    looks: int = 0  # objects the replay memory did not know, looked at in the bucket (HEAD, or a listing)
    missing_tenant: int = 0
    errors: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # seconds from event time to write

    def lambda_response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failures]}


@dataclass(frozen=True)
class Write:
    """One request to the store: a put of ``body`` (an image or an empty tombstone) or a delete."""

    object_key: str
    meta: vm.VersionMeta
    body: bytes | None  # None: a delete marker after a tombstone


@dataclass(frozen=True)
class Seen:
    """What the bucket holds for one object, as this function last looked or wrote: the newest change
    (``None``: nothing of ours) and the current version's ETag (``None``: no current object, i.e. never
    written or removed: the next write needs ``If-None-Match``)."""

    change: vm.VersionMeta | None
    etag: str | None


NOTHING = Seen(None, None)


class ReplayGuard:
    """The replay memory: per object key, what this function last saw there (bounded, least recently
    used out). A record whose change is not after the remembered one is a replay and is skipped; an
    object it does not know is looked at in the bucket first (``Capture._look``)."""

    def __init__(self, size: int = REPLAY_CACHE_SIZE) -> None:
        self._seen: OrderedDict[str, Seen] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, object_key: str) -> Seen | None:
        with self._lock:
            return self._seen.get(object_key)

    def remember(self, object_key: str, seen: Seen) -> None:
        with self._lock:
            self._seen[object_key] = seen
            self._seen.move_to_end(object_key)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)

    def forget(self, object_key: str) -> None:
        with self._lock:
            self._seen.pop(object_key, None)


def is_new(change: vm.VersionMeta, current: vm.VersionMeta | None) -> bool:
    """Must ``change`` (a stream record) be written over ``current``, the object's newest change?
    (docs/format.md, writing rule 3.)

    Over a stream change: only when it is after it (``VersionMeta.after``: sequence numbers within one
    stream, event time then stream label across streams). Over a scan image: unless it is not after the
    stream change the image was written over (a replay); a change before the image's read floor that
    the stream writer had not written yet is written all the same (the image holds it, but restores
    between its event time and the image's need it)."""
    if current is None:
        return True
    if not current.is_image_of_scan:
        return change.after(current)
    position = change.position
    return current.follows is None or position is None or position.after(current.follows)


class Capture:
    """Writes stream records to the store; one instance lives as long as the function."""

    def __init__(
        self,
        store: ObjectStore,
        settings: CaptureSettings,
        schema_lookup: SchemaLookup | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self._schema_lookup = schema_lookup
        self._clock = clock
        self.guard = ReplayGuard()
        self._pool: ThreadPoolExecutor | None = None

    # -- naming -------------------------------------------------------------------------------

    def namer(self, table: str) -> k.ItemNamer:
        schema = None
        if self.settings.plain_text:
            if self._schema_lookup is None:
                raise ValueError("plain-text object names need a key schema lookup")
            schema = self._schema_lookup(table)
        return k.ItemNamer(self.settings.prefix, table, self.settings.plain_text, schema)

    def _tenant_of(self, image: Mapping[str, Any]) -> str | None:
        """The tenant segment for an image (any value type: docs/format.md); ``None`` without multi-tenancy."""
        column = self.settings.tenant_column
        return k.tenant_segment(image.get(column)) if column else None

    def lacks_tenant(self, record: StreamRecord) -> bool:
        """Multi-tenant, and the record's image (NewImage, else OldImage) has no usable tenant value:
        absent, empty, or of a type that cannot name a folder (stored under ``%none``)."""
        column = self.settings.tenant_column
        if not column:
            return False
        image = record.new_image or record.old_image or {}
        if not k.is_missing_tenant(image.get(column)):
            return False
        value = image.get(column)
        log.warning(
            "no usable tenant value: the change is stored under %none",
            extra={
                "item": k.md5_object_name(record.keys),
                "tenant_type": next(iter(value), "?") if isinstance(value, Mapping) else "absent",
            },
        )
        return True

    # -- planning one record --------------------------------------------------------------------

    def writes_for(self, record: StreamRecord) -> list[Write]:
        """The requests that back up one record, in the order they must be made."""
        event = record.event_name
        key, key_json = record.canonical_key, record.key_json
        namer = self.namer(record.table_name)
        meta = vm.VersionMeta(
            event_name=event,
            event_time=record.event_time,
            sequence_number=record.sequence_number,
            event_id=record.event_id,
            key=key,
            removed_by=vm.REMOVED_BY_TTL if event == vm.REMOVE and record.is_ttl_delete else None,
            stream=vm.stream_label(str(record.raw.get("eventSourceARN", ""))),
            tenancy=vm.Tenancy(self.settings.tenant_column or None),
        )
        if event == vm.REMOVE:
            return _removal(namer.object_key(key, self._old_tenant(record), key_json_text=key_json), meta)
        image = record.new_image
        if image is None:
            raise record.image_missing("NewImage", "holds the item to back up")
        new_path = namer.object_key(key, self._tenant_of(image), key_json_text=key_json)
        body = json.dumps(image, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        writes = [Write(new_path, meta, body)]
        if self.settings.tenant_column and event == vm.MODIFY:
            old_path = namer.object_key(key, self._old_tenant(record), key_json_text=key_json)
            if old_path != new_path:
                moved = replace(meta, event_name=vm.REMOVE, removed_by=vm.REMOVED_BY_TENANT_CHANGE)
                writes += _removal(old_path, moved)
        return writes

    def _old_tenant(self, record: StreamRecord) -> str | None:
        if not self.settings.tenant_column:
            return None
        old = record.old_image
        if old is None:
            raise record.image_missing(
                "OldImage", f"names the item's tenant (MultiTenancyColumn={self.settings.tenant_column})"
            )
        return self._tenant_of(old)

    # -- running a batch ------------------------------------------------------------------------

    def process(self, raw_records: Sequence[Mapping[str, Any]]) -> BatchReport:
        """Back up one batch; the report's failures are what Lambda must retry."""
        report = BatchReport()
        groups: dict[str, list[StreamRecord]] = {}
        lock = threading.Lock()
        for index, raw in enumerate(raw_records):
            try:
                record = StreamRecord(raw)
                identity = f"{record.table_name}\n{record.key_json}"  # key_identity, computed once
            except (BadRecord, k.InvalidKeyError) as err:
                _fail(report, lock, _sequence_or_position(raw, index), err, _private_of(raw))
                continue
            groups.setdefault(identity, []).append(record)
        pool = self._executor()
        for done in [pool.submit(self._process_item, group, report, lock) for group in groups.values()]:
            done.result()
        report.failures.sort(key=int)
        return report

    def close(self) -> None:
        """End the thread pool (the stream runner's shutdown; a simulated container going away)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="capture")
        return self._pool

    def _process_item(self, records: Iterable[StreamRecord], report: BatchReport, lock: threading.Lock) -> None:
        for record in records:
            try:
                self._apply(record, report, lock)
            except Exception as err:  # any failure stops this item; Lambda retries from here
                sequence = record.raw.get("dynamodb", {}).get("SequenceNumber", "0")
                _fail(report, lock, sequence, err, _private_of(record.raw, self._object_keys(record)))
                return

    def _object_keys(self, record: StreamRecord) -> list[str]:
        """The object keys a record writes, to keep them out of error reports (none if unknown)."""
        try:
            return [write.object_key for write in self.writes_for(record)]
        except Exception:  # the naming itself failed: the message names no object
            return []

    def _apply(self, record: StreamRecord, report: BatchReport, lock: threading.Lock) -> None:
        writes = self.writes_for(record)
        outcomes = [self._write_object(object_key, group, report, lock) for object_key, group in _by_object(writes)]
        with lock:
            if not any(outcomes):
                report.replays_skipped += 1
                return
            report.written += 1
            report.lags.append(self._clock() - writes[0].meta.event_time)  # the record's, parsed once
            if self.lacks_tenant(record):
                report.missing_tenant += 1

    def _write_object(self, object_key: str, group: list[Write], report: BatchReport, lock: threading.Lock) -> bool:
        """Write one record's requests for one object unless the object already holds this change or a
        later one; False when skipped (docs/format.md, writing rule 3)."""
        change = group[0].meta
        for _ in range(WRITE_ATTEMPTS):
            seen = self.guard.get(object_key)
            if seen is None:
                seen = self._look(object_key)
                with lock:
                    report.looks += 1
            if _half_done_removal(change, seen):
                group = group[1:]  # the tombstone landed, its delete marker did not: finish the removal
            elif not is_new(change, seen.change):
                self.guard.remember(object_key, seen)
                return False
            try:
                etag = self._put(object_key, group, seen.etag)
            except (PreconditionFailed, NoSuchVersion):  # another writer got in between: look again
                self.guard.forget(object_key)
                continue
            except Exception:
                self.guard.forget(object_key)  # the write may have landed: look before the next one
                raise
            self.guard.remember(object_key, Seen(change, etag))
            return True
        raise StoreError(f"{object_key}: kept changing during {WRITE_ATTEMPTS} conditional writes")

    def _put(self, object_key: str, group: Sequence[Write], etag: str | None) -> str | None:
        """The requests, the first one conditional on the current version seen; the ETag left current."""
        for index, write in enumerate(group):
            # Each answer must carry a version id: versioning suspended while warm fails the record loudly.
            if write.body is None:
                require_version(self.store.delete(object_key), partial(_request_name, write))
                etag = None
            elif index == 0:
                result = self.store.put(
                    object_key, write.body, write.meta.to_s3(), if_match=etag, if_none_match=etag is None
                )
                require_version(result.version_id, partial(_request_name, write))
                etag = result.etag
            else:
                result = self.store.put(object_key, write.body, write.meta.to_s3())
                require_version(result.version_id, partial(_request_name, write))
                etag = result.etag
        return etag

    def _look(self, object_key: str) -> Seen:
        """The object's newest change and current ETag, from the bucket: the first page of the key's
        version listing (``ListObjectVersions``, prefix = the key) and a HEAD of the newest object
        version in it (``GetObjectVersion``): behind a current delete marker, our tombstone. A new item
        costs the listing only. (Listing first, not HEAD: S3 answers a HEAD of a missing key with 403
        to a role without ``s3:ListBucket``, which the function does not have.)

        A current scan image is checked against the object version behind it: a stream change the image
        was not written over (not its ``follows``), at or after its read floor, landed inside the full
        backup's look-then-write window; it is written again after the image first (writing rule 4)."""
        entries: list[VersionEntry] = []
        for entry in self.store.list_versions(object_key):
            if entry.key != object_key:
                break
            entries.append(entry)
            if sum(not row.is_delete_marker for row in entries) == 2:
                break
        objects = [entry for entry in entries if not entry.is_delete_marker]
        if not objects:
            return NOTHING
        current = objects[0] is entries[0]
        head = self.store.head(object_key, objects[0].version_id)
        change = vm.VersionMeta.from_s3(head.metadata)
        if current and change is not None and change.is_image_of_scan and head.etag is not None:
            return self._unless_stale(object_key, change, head.etag, objects[1] if len(objects) > 1 else None)
        return Seen(change, head.etag if current else None)

    def _unless_stale(self, object_key: str, image: vm.VersionMeta, etag: str, behind: VersionEntry | None) -> Seen:
        """A current scan image, or, when a racer hides behind it, that racer written again after it."""
        if behind is None:
            return Seen(image, etag)
        racer = self.store.get(object_key, behind.version_id)
        change = vm.VersionMeta.from_s3(racer.metadata)
        position = None if change is None else change.position
        if change is None or position is None or not change.after(image):
            return Seen(image, etag)
        if image.follows is not None and not position.after(image.follows):
            return Seen(image, etag)
        content_type = racer.content_type or "application/json"
        result = self.store.put(object_key, racer.body, change.to_s3(), content_type=content_type, if_match=etag)
        what = f"PutObject of item {k.md5_object_name(change.key or {})}"
        require_version(result.version_id, what)
        if change.is_removal:
            require_version(self.store.delete(object_key), what.replace("PutObject", "DeleteObject"))
            return Seen(change, None)
        return Seen(change, result.etag)


def _by_object(writes: Sequence[Write]) -> list[tuple[str, list[Write]]]:
    """Writes grouped per object key, groups and writes in their order."""
    groups: dict[str, list[Write]] = {}
    for write in writes:
        groups.setdefault(write.object_key, []).append(write)
    return list(groups.items())


def _half_done_removal(change: vm.VersionMeta, seen: Seen) -> bool:
    """The current version is this removal's own tombstone: its delete marker is still to be written."""
    current = seen.change
    return (
        seen.etag is not None
        and change.is_removal
        and current is not None
        and current.is_removal
        and current.position == change.position
    )


def _removal(object_key: str, meta: vm.VersionMeta) -> list[Write]:
    """A removal: an empty tombstone version that keeps the event, then a delete marker so the item
    leaves the bucket's current view."""
    return [Write(object_key, meta, b""), Write(object_key, meta, None)]


def _request_name(write: Write) -> str:
    """A write named for errors and logs: the request and the item's MD5 name, never key values."""
    request = "DeleteObject" if write.body is None else "PutObject"
    return f"{request} of item {k.md5_object_name(write.meta.key)}" if write.meta.key else request


def _sequence_or_position(raw: Any, index: int) -> str:
    try:
        value = raw["dynamodb"]["SequenceNumber"]
    except (KeyError, TypeError):
        return str(index)
    return str(value) if str(value).isdigit() else str(index)


@dataclass(frozen=True)
class _Private:
    """What a failing record's report must not show: its reference replaces them (``privacy``)."""

    ref: str
    object_keys: Sequence[str]
    values: Sequence[Any]


def _private_of(raw: Any, object_keys: Sequence[str] = ()) -> _Private:
    section = raw.get("dynamodb") if isinstance(raw, Mapping) else None
    section = section if isinstance(section, Mapping) else {}
    values = [section.get(name) for name in ("Keys", "NewImage", "OldImage")]
    return _Private(privacy.item_ref(section.get("Keys")), object_keys, values)


def _fail(report: BatchReport, lock: threading.Lock, sequence: Any, err: Exception, private: _Private) -> None:
    """Log and report a failed record by its sequence number and item reference, never by its values."""
    text = privacy.scrub(str(err), private.ref, object_keys=private.object_keys, values=private.values)
    message = (text if text.startswith("record") else f"record {sequence}: {text}") + f" [{private.ref}]"
    extra = {"sequence_number": str(sequence), "item": private.ref, "error": message}
    log.error("backup of a stream record failed", extra=extra)
    with lock:
        report.failures.append(str(sequence))
        report.errors.append(message)
