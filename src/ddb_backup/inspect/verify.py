"""Does the backup agree with the live table? A rate-limited parallel Scan against the backup's state now.

1. The table is scanned (``Segment``/``TotalSegments``, consistent reads, read capacity limited by a
   token bucket). Each item's object key is computed the way the function names it; the table's side
   is held compactly: a 16-byte digest of the object key -> a 16-byte digest of the image plus the key
   (about 150 bytes per item in all; 1 M items ~ 150 MB).
2. The backup's state now is walked (every range in parallel, every present image read). Each item the
   backup holds is looked up and removed from the table's side; what remains at the end is missing from
   the backup (an absent name is never compared: another of the item's names may hold it).
3. A difference may be a change still in flight (the function writes seconds after the change). After
   the grace period each difference is read again, on both sides: gone, or the item changed meanwhile,
   or the backup's newest version is younger than the grace period -> in flight; otherwise drift.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ddb_backup.aws.ratelimit import TokenBucket
from ddb_backup.aws.scan import scan_pages
from ddb_backup.format import keys as k
from ddb_backup.format.version_meta import Tenancy, VersionMeta
from ddb_backup.inspect.images import image_digest, item_key, map_bounded, to_json_image
from ddb_backup.restore.plan import PointInTime, plan_range, table_ranges
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.resolve import TAKE, Resolver
from ddb_backup.restore.state import map_ranges
from ddb_backup.restore.timeline import ItemState
from ddb_backup.store import NoSuchVersion, ObjectStore

MISSING = "missing"  # the table has the item, the backup's state now does not
EXTRA = "extra"  # the backup holds the item, the table no longer has it
DIFFERS = "differs"  # both hold it, with different images
DEFAULT_GRACE = 60.0
DEFAULT_SEGMENTS = 4
PROBE_KEYS = 50
_MD5_NAME = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class VerifyOptions:
    prefix: str
    table: str
    schema: k.KeySchema
    plain_text: bool = False
    tenant_column: str | None = None
    tenancy: Tenancy | None = None  # --tenant-column/--no-tenants, for objects without our record (tenancy.py)
    segments: int = DEFAULT_SEGMENTS
    read_rate: float | None = None  # read capacity units per second; None: unlimited
    grace: float = DEFAULT_GRACE
    workers: int = 16


@dataclass
class Difference:
    kind: str
    object_key: str
    key: dict[str, Any] | None
    observed: float
    table_digest: bytes | None = None
    backup_event_time: float | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "object_key": self.object_key, "key": self.key, "reason": self.reason}


@dataclass
class VerifyReport:
    table_items: int = 0
    backup_items: int = 0
    matching: int = 0
    drift: list[Difference] = field(default_factory=list)
    in_flight: list[Difference] = field(default_factory=list)
    read_capacity: float = 0.0
    skipped: dict[str, Any] = field(default_factory=dict)  # objects that are not the table's items, by reason

    @property
    def in_sync(self) -> bool:
        return not self.drift

    def counts(self) -> dict[str, int]:
        kinds = (MISSING, EXTRA, DIFFERS)
        return {kind: sum(1 for d in self.drift if d.kind == kind) for kind in kinds}

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_sync": self.in_sync,
            "table_items": self.table_items,
            "backup_items": self.backup_items,
            "matching": self.matching,
            "drift": self.counts(),
            "in_flight": len(self.in_flight),
            "read_capacity_units": round(self.read_capacity, 1),
            "differences": [d.as_dict() for d in self.drift],
            "in_flight_items": [d.as_dict() for d in self.in_flight],
            "skipped": self.skipped,
        }


def uses_plain_text_names(store: ObjectStore, folder: str) -> bool:
    """Whether the objects under a table's folder (tenant folders included) are plain-text names: a
    probe of the first keys. An empty folder answers False (MD5 is the function's default)."""
    names = [
        entry.key[len(folder) :].rsplit("/", 1)[-1]
        for entry in itertools.islice(store.list_versions(folder), PROBE_KEYS)
    ]
    return bool(names) and not all(_MD5_NAME.fullmatch(name) for name in names)


def _digest(object_key: str) -> bytes:
    return hashlib.blake2b(object_key.encode("utf-8"), digest_size=16).digest()


class TableSide:
    """The live table's items, compactly: object-key digest -> image digest + (object key, key) JSON."""

    def __init__(self, options: VerifyOptions) -> None:
        self.options = options
        self.namer = k.ItemNamer(options.prefix, options.table, options.plain_text, options.schema)
        self.items: dict[bytes, bytes] = {}

    def object_key(self, item: dict[str, Any]) -> str:
        tenant = None
        if self.options.tenant_column is not None:
            tenant = k.tenant_segment(item.get(self.options.tenant_column))
        return self.namer.object_key(item_key(item, self.options.schema), tenant)

    def add(self, item: dict[str, Any]) -> None:
        object_key = self.object_key(item)
        names = json.dumps([object_key, item_key(to_json_image(item), self.options.schema)], ensure_ascii=False)
        self.items[_digest(object_key)] = image_digest(item) + names.encode("utf-8")

    def pop(self, object_key: str) -> TableEntry | None:
        value = self.items.pop(_digest(object_key), None)
        return None if value is None else TableEntry.unpack(value)

    def remaining(self) -> Iterator[TableEntry]:
        for value in self.items.values():
            yield TableEntry.unpack(value)


@dataclass(frozen=True)
class TableEntry:
    digest: bytes
    object_key: str
    key: dict[str, Any]

    @classmethod
    def unpack(cls, value: bytes) -> TableEntry:
        object_key, key = json.loads(value[16:])
        return cls(value[:16], object_key, key)


def scan_segment(
    dynamodb: Any, table: str, segment: int, total: int, limiter: TokenBucket | None, paid: Callable[[float], None]
) -> Iterator[dict[str, Any]]:
    """One segment's items; what each page cost is added up through ``paid``."""
    page_size = max(1, int(limiter.rate)) if limiter is not None else None  # about a second's worth per page
    for page in scan_pages(
        dynamodb, table, segment=segment, total_segments=total, limiter=limiter, page_size=page_size
    ):
        paid(page.units or len(page.items) or 1)
        yield from page.items


def scan_table(
    dynamodb: Any,
    options: VerifyOptions,
    side: TableSide,
    report: VerifyReport,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    limiter = TokenBucket(options.read_rate, clock=clock, sleep=sleep) if options.read_rate else None
    total = max(1, options.segments)
    lock = threading.Lock()

    def paid(units: float) -> None:
        with lock:
            report.read_capacity += units

    def work(segment: int) -> Iterator[dict[str, Any]]:
        return scan_segment(dynamodb, options.table, segment, total, limiter, paid)

    for _, item in map_ranges(list(range(total)), work, total):
        if item is not None:
            side.add(item)
            report.table_items += 1


@dataclass(frozen=True)
class BackupImage:
    state: ItemState
    image: dict[str, Any] | None
    event_time: float | None
    skip: bool = False  # not the item's state: a stray object, or the item is held under another name


def read_backup_image(store: ObjectStore, state: ItemState) -> BackupImage:
    """The image of the state (None: absent) and its version's event time (None: the original tool's)."""
    if state.version is None:
        return BackupImage(state, None, None)
    try:
        stored = store.get(state.object_key, state.version.version_id)
    except NoSuchVersion:
        return BackupImage(state, None, None)
    meta = VersionMeta.from_s3(stored.metadata)
    event_time = meta.event_time if meta is not None else stored.last_modified.timestamp()
    return BackupImage(state, json.loads(stored.body), event_time)


def compare_backup(
    store: ObjectStore, options: VerifyOptions, side: TableSide, report: VerifyReport, clock: Callable[[], float]
) -> list[Difference]:
    """Walk the backup's state now against the table's side; what remains there is missing."""
    differences: list[Difference] = []
    ranges = table_ranges(store, options.prefix, options.table)
    now = clock()
    resolver = Resolver(store, options.prefix, options.table, options.schema, tenancy=options.tenancy)
    states = (s for _, s in map_ranges(ranges, _planner(store, now)) if s is not None)

    def read(state: ItemState) -> BackupImage:
        if state.version is None:
            return BackupImage(state, None, None)
        resolution = resolver.resolve(state, now)
        if resolution.kind != TAKE:
            return BackupImage(state, None, None, skip=True)
        return BackupImage(state, resolution.image, resolution.event_time)

    for _, backup in map_bounded(read, states, workers=options.workers):
        if backup.skip or backup.image is None:
            # An absent name says nothing of the item: another of its names (the original tool's, after a
            # rollback) may hold it. An item the table holds and no name does remains: missing, below.
            continue
        report.backup_items += 1
        object_key = side.object_key(backup.image)
        difference = _difference(backup, side.pop(object_key), options, clock(), object_key)
        if difference is None:
            report.matching += 1
        else:
            differences.append(difference)
    for entry in side.remaining():
        differences.append(Difference(MISSING, entry.object_key, entry.key, clock(), table_digest=entry.digest))
    report.skipped = resolver.skips.as_dict()
    return differences


def _planner(store: ObjectStore, at: float) -> Callable[[KeyRange], Iterator[ItemState]]:
    def work(key_range: KeyRange) -> Iterator[ItemState]:
        return plan_range(store, key_range, PointInTime(at=at))

    return work


def _difference(
    backup: BackupImage, table: TableEntry | None, options: VerifyOptions, now: float, object_key: str
) -> Difference | None:
    assert backup.image is not None  # absent names are never compared (compare_backup)
    key = item_key(backup.image, options.schema)
    if table is None:
        return Difference(EXTRA, object_key, key, now, backup_event_time=backup.event_time)
    if table.digest == image_digest(backup.image):
        return None
    return Difference(DIFFERS, object_key, key, now, table_digest=table.digest, backup_event_time=backup.event_time)


def settle(
    store: ObjectStore,
    dynamodb: Any,
    options: VerifyOptions,
    differences: list[Difference],
    report: VerifyReport,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Read every difference again once the grace period has passed since it was seen."""
    if not differences:
        return
    wait = max(d.observed for d in differences) + options.grace - clock()
    if wait > 0:
        sleep(wait)
    for difference in differences:
        difference.reason = _recheck(store, dynamodb, options, difference, clock())
        in_flight = difference.reason.startswith(IN_FLIGHT)
        (report.in_flight if in_flight else report.drift).append(difference)


IN_FLIGHT = "in flight: "
_DRIFT_REASONS = {
    MISSING: "the table has the item, the backup's newest state does not",
    EXTRA: "the backup holds the item, the table no longer has it",
    DIFFERS: "the table's item differs from the backup's newest image",
}


def _recheck(store: ObjectStore, dynamodb: Any, options: VerifyOptions, difference: Difference, now: float) -> str:
    answer = dynamodb.get_item(TableName=options.table, Key=client_key(difference.key or {}), ConsistentRead=True)
    table_image = answer.get("Item")
    table_digest = None if table_image is None else image_digest(table_image)
    resolver = Resolver(store, options.prefix, options.table, options.schema, tenancy=options.tenancy)
    change = resolver.item_change(difference.key or {}, _tenant_of(options, difference.object_key), now)
    backup = BackupImage(ItemState(difference.object_key, None), resolver.image_of(change), None)
    if change is not None:
        written = change.entry.last_modified.timestamp()
        backup = replace(backup, event_time=written if change.meta is None else change.meta.event_time)
    backup_digest = None if backup.image is None else image_digest(backup.image)
    if table_digest == backup_digest:
        return IN_FLIGHT + "agreed when read again after the grace period"
    if table_digest != difference.table_digest:
        return IN_FLIGHT + "the table's item changed during the check"
    if backup.event_time is not None and backup.event_time > now - options.grace:
        return IN_FLIGHT + "the backup's newest version is younger than the grace period"
    return _DRIFT_REASONS[difference.kind]


def _tenant_of(options: VerifyOptions, object_key: str) -> str | None:
    """The tenant segment of one of our object keys (None without multi-tenancy)."""
    if options.tenant_column is None:
        return None
    relative = object_key[len(k.table_prefix(options.prefix, options.table)) :]
    return relative.split("/", 1)[0] if "/" in relative else None


def client_key(key: dict[str, Any]) -> dict[str, Any]:
    """A key in JSON (binary as base64 text) as boto3's client takes it (binary as bytes)."""
    return {name: {"B": base64.b64decode(v["B"])} if "B" in v else v for name, v in key.items()}


def verify_table(
    store: ObjectStore,
    dynamodb: Any,
    options: VerifyOptions,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifyReport:
    """Scan the table, walk the backup's state now, and read every difference again after the grace period."""
    report = VerifyReport()
    side = TableSide(options)
    scan_table(dynamodb, options, side, report, clock=clock, sleep=sleep)
    differences = compare_backup(store, options, side, report, clock)
    settle(store, dynamodb, options, differences, report, clock=clock, sleep=sleep)
    return report
