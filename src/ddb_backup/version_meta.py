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


class MetadataError(ValueError):
    """Metadata that says it is ours but cannot be read."""


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

    @property
    def is_removal(self) -> bool:
        return self.event_name == REMOVE

    @property
    def order(self) -> tuple[float, int, int]:
        """Sort key of changes to one item: event time, then a stream change after a scan's image of
        the same moment (the scan may have read just before it), then sequence number."""
        rank = 0 if self.event_name == FULL_BACKUP else 1
        return (self.event_time, rank, int(self.sequence_number or 0))

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
        }
        metadata.update({name: value for name, value in optional.items() if value})
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
            )
        except (KeyError, ValueError) as err:
            raise MetadataError(f"backup version metadata cannot be read ({err}): {dict(lowered)}") from err


def _metadata_size(metadata: Mapping[str, str]) -> int:
    return sum(len(name) + len(value.encode("utf-8")) for name, value in metadata.items())
