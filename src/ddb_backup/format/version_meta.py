"""The metadata every backup version carries: the change's own identity (docs/format.md).

S3 keeps user metadata as ``x-amz-meta-<name>`` headers: ASCII only, 2 KB in all. Names here are
the part after ``x-amz-meta-``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FORMAT_VERSION = "1"
MAX_METADATA_BYTES = 2048

# Metadata names (lower case, as S3 returns them).
FORMAT = "format"
EVENT_NAME = "event-name"
EVENT_TIME = "event-time"
SEQUENCE_NUMBER = "sequence-number"
EVENT_ID = "event-id"
KEY = "key"
REMOVED_BY = "removed-by"
WRITER = "writer"
STREAM = "stream"  # the stream label, the part of eventSourceARN after "/stream/"
READ_FLOOR = "read-floor"  # FULL_BACKUP: no item of the Scan page was read before this moment
FOLLOWS_STREAM = "follows-stream"  # FULL_BACKUP: the newest stream change it was written over...
FOLLOWS_SEQUENCE = "follows-sequence"
FOLLOWS_TIME = "follows-time"
TENANT_ATTRIBUTE = "tenant-attribute"  # JSON: the writer's MultiTenancyColumn, or null without one

# Event names. The first three are DynamoDB Streams' own; FULL_BACKUP marks an image read by a scan.
INSERT = "INSERT"
MODIFY = "MODIFY"
REMOVE = "REMOVE"
FULL_BACKUP = "FULL_BACKUP"
EVENT_NAMES = (INSERT, MODIFY, REMOVE, FULL_BACKUP)

# Why an item left: a user's delete has no ``removed-by``.
REMOVED_BY_TTL = "ttl"
REMOVED_BY_TENANT_CHANGE = "tenant-change"

WRITER_STREAM = "stream"
WRITER_FULL_BACKUP = "full-backup"


@dataclass(frozen=True)
class Tenancy:
    """What the writer of a version recorded about tenants: its ``MultiTenancyColumn`` (``attribute``),
    or ``None`` when it wrote no tenant folder. A version without this record (``VersionMeta.tenancy``
    is ``None``) was written before writers kept it, or by the original tool (docs/format.md,
    "Which objects a reader takes as a table's")."""

    attribute: str | None


class MetadataError(ValueError):
    """Metadata that says it is ours but cannot be read."""


def stream_label(event_source_arn: str) -> str | None:
    """``arn:aws:dynamodb:R:A:table/NAME/stream/2026-11-27T00:00:00.000`` -> ``2026-11-27T00:00:00.000``.

    The label is the stream's creation time: a table created again gets a new, later label, and a
    new stream whose sequence numbers have nothing to do with the old one's (DynamoDB Streams API
    reference, ``StreamLabel``)."""
    _, found, label = event_source_arn.rpartition("/stream/")
    return label or None if found else None


@dataclass(frozen=True)
class StreamPosition:
    """One stream change's place: its stream, sequence number and event time."""

    stream: str | None
    sequence: int
    time: float

    def after(self, other: StreamPosition) -> bool:
        """Later in the order of changes (docs/format.md, "Order of changes"): by sequence number within
        one stream; across streams by event time, then the later stream label, then sequence number."""
        if self.stream == other.stream:
            return self.sequence > other.sequence
        return (self.time, self.stream or "", self.sequence) > (other.time, other.stream or "", other.sequence)


def format_epoch(seconds: float) -> str:
    """Epoch seconds as text: whole seconds bare (``1732700000``), else to the microsecond at most,
    without trailing zeros (``1732700000.25``, ``1732700000.123456``)."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.6f}".rstrip("0").rstrip(".")


def epoch_to_iso(seconds: float) -> str:
    """``2026-11-27T10:00:00Z``; milliseconds, or microseconds, only when there are some."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    spec = "seconds" if not moment.microsecond else "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


@dataclass(frozen=True)
class VersionMeta:
    """What one backup version says about the change it holds."""

    event_name: str
    event_time: float
    sequence_number: str | None = None
    event_id: str | None = None
    key: dict[str, Any] | None = None
    removed_by: str | None = None
    writer: str = WRITER_STREAM
    stream: str | None = None  # stream versions: the stream label (absent in versions before it was kept)
    read_floor: float | None = None  # FULL_BACKUP: the Scan page's read floor (absent: ``event_time``)
    follows: StreamPosition | None = None  # FULL_BACKUP: the newest stream change it was written over
    tenancy: Tenancy | None = None  # the writer's tenant attribute; None: not recorded (older versions)

    @property
    def is_removal(self) -> bool:
        return self.event_name == REMOVE

    @property
    def is_image_of_scan(self) -> bool:
        return self.event_name == FULL_BACKUP

    @property
    def floor(self) -> float:
        """A scan image's read floor; a stream change's event time."""
        return self.event_time if self.read_floor is None else self.read_floor

    @property
    def position(self) -> StreamPosition | None:
        """A stream change's place in its stream; ``None`` for a scan image."""
        if self.is_image_of_scan:
            return None
        return StreamPosition(self.stream, int(self.sequence_number or 0), self.event_time)

    @property
    def order(self) -> tuple[float, int, str, int]:
        """Sort key of changes to one item: event time (a scan image's read floor), then a stream
        change after a scan image of the same second (the scan may have read just before it), then the
        later stream label, then sequence number. Within one stream, event times never go backwards."""
        rank = 0 if self.is_image_of_scan else 1
        return (self.floor, rank, self.stream or "", int(self.sequence_number or 0))

    def after(self, other: VersionMeta) -> bool:
        """Is this change later than ``other`` in the order of changes (docs/format.md)? Stream changes
        compare by ``StreamPosition.after``; a stream change at or after a scan image's read floor is
        after the image (the scan may not have seen it; the stream's own record is the truth)."""
        mine, theirs = self.position, other.position
        if mine is not None and theirs is not None:
            return mine.after(theirs)
        if mine is not None:
            return self.event_time >= other.floor
        if theirs is not None:
            return self.floor > other.event_time
        return (self.floor, self.event_time) > (other.floor, other.event_time)

    def to_s3(self) -> dict[str, str]:
        """The ``Metadata`` argument of PutObject. The key is left out if it would pass S3's 2 KB."""
        metadata = {
            FORMAT: FORMAT_VERSION,
            WRITER: self.writer,
            EVENT_NAME: self.event_name,
            EVENT_TIME: format_epoch(self.event_time),
        }
        optional = {
            SEQUENCE_NUMBER: self.sequence_number,
            EVENT_ID: self.event_id,
            REMOVED_BY: self.removed_by,
            STREAM: self.stream,
            READ_FLOOR: None if self.read_floor is None else format_epoch(self.read_floor),
        }
        if self.follows is not None:
            optional[FOLLOWS_STREAM] = self.follows.stream
            optional[FOLLOWS_SEQUENCE] = str(self.follows.sequence)
            optional[FOLLOWS_TIME] = format_epoch(self.follows.time)
        metadata.update({name: value for name, value in optional.items() if value})
        if self.tenancy is not None:
            metadata[TENANT_ATTRIBUTE] = json.dumps(self.tenancy.attribute, ensure_ascii=True)
        if self.key is not None:
            key_text = json.dumps(self.key, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
            if _metadata_size(metadata) + len(KEY) + len(key_text) <= MAX_METADATA_BYTES:
                metadata[KEY] = key_text
        return metadata

    @classmethod
    def from_s3(cls, metadata: Mapping[str, str]) -> VersionMeta | None:
        """Read back ``to_s3``'s output; ``None`` for a version without our metadata (the original tool)."""
        lowered = {name.lower(): value for name, value in metadata.items()}
        if FORMAT not in lowered:
            return None
        try:
            return cls(
                event_name=lowered[EVENT_NAME],
                event_time=float(lowered[EVENT_TIME]),
                sequence_number=lowered.get(SEQUENCE_NUMBER),
                event_id=lowered.get(EVENT_ID),
                key=json.loads(lowered[KEY]) if KEY in lowered else None,
                removed_by=lowered.get(REMOVED_BY),
                writer=lowered.get(WRITER, WRITER_STREAM),
                stream=lowered.get(STREAM),
                read_floor=float(lowered[READ_FLOOR]) if READ_FLOOR in lowered else None,
                follows=_follows(lowered),
                tenancy=_tenancy(lowered),
            )
        except (KeyError, ValueError) as err:
            raise MetadataError(f"backup version metadata cannot be read ({err}): {dict(lowered)}") from err


def _follows(lowered: Mapping[str, str]) -> StreamPosition | None:
    if FOLLOWS_SEQUENCE not in lowered:
        return None
    return StreamPosition(lowered.get(FOLLOWS_STREAM), int(lowered[FOLLOWS_SEQUENCE]), float(lowered[FOLLOWS_TIME]))


def _tenancy(lowered: Mapping[str, str]) -> Tenancy | None:
    if TENANT_ATTRIBUTE not in lowered:
        return None
    attribute = json.loads(lowered[TENANT_ATTRIBUTE])
    if attribute is not None and not isinstance(attribute, str):
        raise ValueError(f"{TENANT_ATTRIBUTE} is neither a name nor null")
    return Tenancy(attribute)


def _metadata_size(metadata: Mapping[str, str]) -> int:
    return sum(len(name) + len(value.encode("utf-8")) for name, value in metadata.items())
