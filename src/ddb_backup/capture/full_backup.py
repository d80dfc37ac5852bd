"""Full backup: a parallel, consistent Scan of a live table written as ``FULL_BACKUP`` versions.

Every item gets the object name the stream writer gives it (``keys.ItemNamer``) and a version whose
``event-time`` is when the scan read it (docs/format.md, writing rule 4). A scan image never becomes
the newest version over a stream change at or after its read time: the current version is looked at
first and the write is conditional on it (``If-Match`` its ETag, ``If-None-Match`` when there is no
current object), re-checked after a conflict.

Segments run on threads (Scan ``Segment``/``TotalSegments``); writes go to a bounded pool; a token
bucket on consumed read capacity keeps the table's read rate under a limit shared by all segments.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup.aws.ratelimit import TokenBucket
from ddb_backup.aws.scan import ScanPage, scan_pages
from ddb_backup.capture import privacy
from ddb_backup.capture.records import to_lambda_value
from ddb_backup.errors import UserError
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.format.table_schema import describe_table, save_schema, schema_object_key
from ddb_backup.settings import require_versioning
from ddb_backup.store import (
    NoSuchVersion,
    ObjectStore,
    PreconditionFailed,
    PutResult,
    StoreError,
    VersionEntry,
    require_version,
)

log = logging.getLogger(__name__)

DEFAULT_SEGMENTS = 4
DEFAULT_WORKERS = 32
# Stream event times are whole seconds rounded down (AWS); a scan's read time is rounded down too and
# moved back by this margin so that clock error between this machine and DynamoDB cannot make a scan
# image sort after a stream change that happened after the read.
DEFAULT_CLOCK_MARGIN = 1.0
WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class FullBackupOptions:
    prefix: str = ""
    plain_text: bool = False
    tenant_column: str | None = None
    segments: int = DEFAULT_SEGMENTS
    read_rate: float | None = None  # read capacity units per second, all segments together
    page_size: int | None = None  # Scan Limit; None: DynamoDB's 1 MB pages
    workers: int = DEFAULT_WORKERS  # concurrent item writes
    clock_margin: float = DEFAULT_CLOCK_MARGIN


@dataclass
class FullBackupSummary:
    table: str
    segments: int
    estimated_items: int = 0  # DescribeTable's ItemCount (updated by DynamoDB about every 6 hours)
    scanned: int = 0
    written: int = 0
    skipped_newer: int = 0  # the stream already holds a change at or after the read time
    failed: int = 0
    consumed_read_units: float = 0.0
    errors: list[str] = field(default_factory=list)
    schema_key: str = ""
    seconds: float = 0.0


ProgressCallback = Callable[[FullBackupSummary], None]


@dataclass(frozen=True)
class Current:
    """What the bucket holds for an item now: its newest change (``None``: nothing), the ETag to write
    on (``None``: no current object, so the write needs ``If-None-Match``), and, when there is no current
    object, the newest entry of the key's listing (a delete marker's version id) to spot a racer by."""

    change: vm.VersionMeta | None
    etag: str | None
    newest_entry: str | None = None

    @property
    def follows(self) -> vm.StreamPosition | None:
        """The newest stream change behind the current version (a scan image's own ``follows``)."""
        if self.change is None:
            return None
        return self.change.follows if self.change.is_image_of_scan else self.change.position


def read_time_for(moment: float, margin: float = DEFAULT_CLOCK_MARGIN) -> float:
    """The read floor of a Scan page sent at ``moment`` by a local clock: whole seconds, rounded down,
    less ``margin`` for that clock's error."""
    return float(math.floor(moment - margin))


def page_times(page: ScanPage, margin: float = DEFAULT_CLOCK_MARGIN) -> tuple[float, float]:
    """``(read floor, image time)`` of a Scan page (docs/format.md, writing rule 4).

    By DynamoDB's own clock when the answer has a ``Date`` header D (whole seconds, rounded down; the
    clock stream event times come from): no item was read before D less the request's duration
    (rounded down), and all were read before D + 1. Else by the local clock, less ``margin``."""
    if page.server_time is not None:
        return float(math.floor(page.server_time - page.elapsed)), page.server_time + 1.0
    return read_time_for(page.started, margin), page.ended


def item_body(item: Mapping[str, Any]) -> bytes:
    """The item in DynamoDB JSON with binary as base64 text, serialised as the stream writer does."""
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ImageWriter:
    """Writes one scanned item as a ``FULL_BACKUP`` version unless a newer change is already there."""

    def __init__(self, store: ObjectStore, namer: k.ItemNamer, key_schema: k.KeySchema, tenant_column: str | None):
        self.store = store
        self.namer = namer
        self.key_schema = key_schema
        self.tenant_column = tenant_column
        self.repaired = 0  # racers written again after an image (writing rule 4); counted for tests
        self._lock = threading.Lock()

    def object_key(self, item: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        key = k.canonical_key({name: item[name] for name in self.key_schema.attribute_names if name in item})
        tenant = k.tenant_segment(item.get(self.tenant_column)) if self.tenant_column else None
        return self.namer.object_key(key, tenant), key

    def write(self, boto_item: Mapping[str, Any], read_floor: float, image_time: float | None = None) -> bool:
        """True when written, False when the bucket already holds a change at or after ``read_floor``.

        ``image_time`` (by when every item of the page had been read) is the version's ``event-time``:
        a restore uses the image from then on (docs/format.md, rule 4)."""
        item = {name: to_lambda_value(value) for name, value in boto_item.items()}
        object_key, key = self.object_key(item)
        when = read_floor if image_time is None else max(read_floor, image_time)
        body = item_body(item)
        for _ in range(WRITE_ATTEMPTS):
            current = self.current(object_key)
            image = vm.VersionMeta(
                vm.FULL_BACKUP,
                when,
                key=key,
                writer=vm.WRITER_FULL_BACKUP,
                read_floor=read_floor,
                follows=current.follows,
                tenancy=vm.Tenancy(self.tenant_column or None),
            )
            if current.change is not None and not image.after(current.change):
                return False
            try:
                if current.etag is None:
                    self._put_new(object_key, body, image, current)
                else:
                    result = self.store.put(object_key, body, image.to_s3(), if_match=current.etag)
                    require_version(result.version_id, f"PutObject of item {k.md5_object_name(key)}")
                return True
            except (PreconditionFailed, NoSuchVersion):  # a writer got in between: look again
                continue
        raise StoreError(f"{object_key}: kept changing during {WRITE_ATTEMPTS} conditional writes")

    def current(self, object_key: str) -> Current:
        try:
            head = self.store.head(object_key)
        except NoSuchVersion:
            return self._removal(object_key)
        return Current(_change_of(head.metadata, head.last_modified.timestamp()), head.etag)

    def _removal(self, object_key: str) -> Current:
        """No current object: never written, or removed; a removal's change is its tombstone's, or, for
        a delete marker of the original tool (no tombstone behind it), a removal at the marker's write time."""
        marker_time: float | None = None
        newest: str | None = None
        for entry in _versions_of(self.store, object_key):
            newest = entry.version_id if newest is None else newest
            if entry.is_delete_marker:
                marker_time = entry.last_modified.timestamp() if marker_time is None else marker_time
                continue
            meta = vm.VersionMeta.from_s3(self.store.head(object_key, entry.version_id).metadata)
            if meta is not None and meta.is_removal:
                return Current(meta, None, newest)
            break
        change = None if marker_time is None else vm.VersionMeta(vm.REMOVE, marker_time)
        return Current(change, None, newest)

    def _put_new(self, object_key: str, body: bytes, image: vm.VersionMeta, seen: Current) -> None:
        """The ``If-None-Match`` write, then the racer check (``_settle``), both surviving a lost answer:
        a write whose answer never came is found in the listing; the check is retried."""
        try:
            result = self.store.put(object_key, body, image.to_s3(), if_none_match=True)
        except (PreconditionFailed, NoSuchVersion):
            raise
        except StoreError:
            landed = self._landed(object_key, image, seen)
            if landed is None:
                raise
            result = landed
        require_version(result.version_id, f"PutObject of item {k.md5_object_name(image.key or {})}")
        for attempt in range(WRITE_ATTEMPTS):
            try:
                self._settle(object_key, image, result, seen)
                return
            except (PreconditionFailed, NoSuchVersion):
                return  # another writer wrote after the image
            except StoreError:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise

    def _landed(self, object_key: str, image: vm.VersionMeta, seen: Current) -> PutResult | None:
        """Our image, if a write that raised did land: a version newer than the look with its metadata."""
        for entry in _versions_of(self.store, object_key):
            if entry.version_id == seen.newest_entry:
                return None
            if entry.is_delete_marker:
                continue
            if vm.VersionMeta.from_s3(self.store.head(object_key, entry.version_id).metadata) == image:
                return PutResult(entry.version_id, entry.etag)
        return None

    def _settle(self, object_key: str, image: vm.VersionMeta, result: PutResult, seen: Current) -> None:
        """After an ``If-None-Match`` write, which passes over a delete marker: did a stream write land
        between the look and the write? If its change is after the image, write it again after the
        image, so the newest version is the newest change (docs/format.md, writing rule 4)."""
        entries = list(_versions_of(self.store, object_key))
        if not entries or entries[0].version_id != result.version_id:
            return  # a later writer already wrote after the image (or the image is gone)
        older = [entry.version_id for entry in entries[1:]]
        seen_at = older.index(seen.newest_entry) if seen.newest_entry in older else len(older)
        racers = entries[1 : 1 + seen_at]
        racer = next((entry for entry in racers if not entry.is_delete_marker), None)
        if racer is None:
            return
        stored = self.store.get(object_key, racer.version_id)
        change = vm.VersionMeta.from_s3(stored.metadata)
        if change is None or not change.after(image):
            return
        try:
            content_type = stored.content_type or "application/json"
            again = self.store.put(
                object_key, stored.body, change.to_s3(), content_type=content_type, if_match=result.etag
            )
        except (PreconditionFailed, NoSuchVersion):
            return  # another writer already wrote after the image
        item = k.md5_object_name(change.key) if change.key else "(key in the body)"
        require_version(again.version_id, f"PutObject of item {item}")
        if change.is_removal:
            require_version(self.store.delete(object_key), f"DeleteObject of item {item}")
        with self._lock:
            self.repaired += 1


def _versions_of(store: ObjectStore, object_key: str) -> Iterator[VersionEntry]:
    for entry in store.list_versions(object_key):
        if entry.key != object_key:
            return
        yield entry


def _change_of(metadata: Mapping[str, str], last_modified: float) -> vm.VersionMeta:
    """A version's change; one of the original tool (no metadata) counts as a change at its write time."""
    meta = vm.VersionMeta.from_s3(metadata)
    return meta if meta is not None else vm.VersionMeta(vm.MODIFY, last_modified)


class FullBackup:
    """One full backup of one table: scan segments in parallel, write images, count."""

    def __init__(
        self,
        dynamodb: Any,
        store: ObjectStore,
        table: str,
        key_schema: k.KeySchema,
        options: FullBackupOptions,
        *,
        clock: Callable[[], float] = time.time,
        limiter: TokenBucket | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.options = options
        self.clock = clock
        self.limiter = limiter or (TokenBucket(options.read_rate) if options.read_rate else None)
        self.on_progress = on_progress
        namer = k.ItemNamer(options.prefix, table, options.plain_text, key_schema if options.plain_text else None)
        k.check_key_room(options.prefix, table, tenants=bool(options.tenant_column))  # before any scan
        self.writer = ImageWriter(store, namer, key_schema, options.tenant_column)
        self.summary = FullBackupSummary(table=table, segments=options.segments)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._in_flight = threading.BoundedSemaphore(options.workers * 4)

    def run(self) -> FullBackupSummary:
        started = time.monotonic()
        with (
            ThreadPoolExecutor(self.options.workers, thread_name_prefix="full-backup-write") as writes,
            ThreadPoolExecutor(self.options.segments, thread_name_prefix="full-backup-scan") as scans,
        ):
            segments = [scans.submit(self._scan_segment, s, writes) for s in range(self.options.segments)]
            try:
                for segment in segments:
                    segment.result()
            finally:
                self._stop.set()
        self.summary.seconds = time.monotonic() - started
        if self.on_progress is not None:
            self.on_progress(self.summary)
        return self.summary

    def _scan_segment(self, segment: int, writes: ThreadPoolExecutor) -> None:
        pages = scan_pages(
            self.dynamodb,
            self.table,
            segment=segment,
            total_segments=self.options.segments,
            limiter=self.limiter,
            page_size=self.options.page_size,
            clock=self.clock,
        )
        for page in pages:
            read_floor, image_time = page_times(page, self.options.clock_margin)
            for item in page.items:
                self._in_flight.acquire()
                writes.submit(self._write, item, read_floor, image_time).add_done_callback(self._released)
            self._count(scanned=len(page.items), units=page.units)
            if self._stop.is_set():
                return

    def _private_message(self, boto_item: Mapping[str, Any], err: Exception) -> str:
        item = {name: to_lambda_value(value) for name, value in boto_item.items()}
        key = {name: item[name] for name in self.writer.key_schema.attribute_names if name in item}
        ref = privacy.item_ref(key)
        try:
            object_keys = [self.writer.object_key(item)[0]]
        except (k.InvalidKeyError, ValueError):
            object_keys = []
        text = privacy.scrub(str(err), ref, object_keys=object_keys, values=[item])
        return f"{ref}: {text}"

    def _released(self, _: Future[None]) -> None:
        self._in_flight.release()

    def _write(self, item: Mapping[str, Any], read_time: float, image_time: float) -> None:
        try:
            written = self.writer.write(item, read_time, image_time)
        except (StoreError, k.InvalidKeyError) as err:
            message = self._private_message(item, err)  # a reference, never the item's values (privacy)
            log.error("full backup of an item failed: %s", message)
            with self._lock:
                self.summary.failed += 1
                if len(self.summary.errors) < 20:
                    self.summary.errors.append(message)
            return
        with self._lock:
            if written:
                self.summary.written += 1
            else:
                self.summary.skipped_newer += 1

    def _count(self, *, scanned: int, units: float) -> None:
        with self._lock:
            self.summary.scanned += scanned
            self.summary.consumed_read_units += units
            if self.on_progress is not None:
                self.on_progress(self.summary)


def describe_source(dynamodb: Any, table: str) -> dict[str, Any]:
    """DescribeTable's ``Table``; a missing table is the user's to fix."""
    description = describe_table(dynamodb, table)
    if description is None:
        raise UserError(
            f"table {table!r} does not exist in this region",
            hint="check --table and --region (or AWS_REGION / --endpoint-url)",
        )
    return description


def time_to_live_of(dynamodb: Any, table: str) -> dict[str, Any] | None:
    try:
        answer = dynamodb.describe_time_to_live(TableName=table)
    except ClientError as err:
        log.warning("DescribeTimeToLive failed, the saved schema has no TTL settings: %s", err)
        return None
    description: dict[str, Any] | None = answer.get("TimeToLiveDescription")
    return description


def run_full_backup(
    dynamodb: Any,
    store: ObjectStore,
    bucket: str,
    table: str,
    options: FullBackupOptions,
    *,
    on_progress: ProgressCallback | None = None,
) -> FullBackupSummary:
    """Check the bucket, save the table's schema, then back up every item of ``table``."""
    if options.segments < 1:
        raise UserError(f"--segments must be at least 1, got {options.segments}", hint="--segments 4")
    require_versioning(bucket, store.versioning_enabled())
    description = describe_source(dynamodb, table)
    save_schema(
        store,
        options.prefix,
        description,
        time_to_live=time_to_live_of(dynamodb, table),
        tenancy=vm.Tenancy(options.tenant_column or None),
    )
    backup = FullBackup(
        dynamodb, store, table, k.KeySchema.from_describe_table(description), options, on_progress=on_progress
    )
    backup.summary.estimated_items = int(description.get("ItemCount") or 0)
    backup.summary.schema_key = schema_object_key(options.prefix, table)
    return backup.run()
