"""A synthetic versioned bucket: a table's history computed from item numbers, never held in memory.

Item ``i`` is named by a 32-hex-digit number that grows with ``i`` (so names look like MD5 names and
list in order without sorting), has ``versions`` versions, and a history of one of four kinds:
changed only long before TIME, changed in the hour before it, changed in the 24 h after it
(``after_share``), or changed again days after it. Every version is written a little after its
event (0.05 to 3 s of lag; S3 keeps the write time to the second). HEAD answers the metadata the
capture would have written, computed from the version id; the listing is generated as it is read.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ddb_backup.format.version_meta as vm
from ddb_backup.store import NoSuchVersion, PutResult, StoredObject, VersionEntry

DAY = 86400.0
TIME = 1_764_000_000.0  # the restore's point in time
MASK = (1 << 64) - 1
NAME_SPACE = 1 << 128
LIST_PAGE_SIZE = 1000

BEFORE, RECENT, AFTER_24H, DAYS_AFTER = "before", "recent", "after-24h", "days-after"


def mix(n: int) -> int:
    """A cheap well-spread hash of an integer (SplitMix64's finaliser)."""
    n = (n + 0x9E3779B97F4A7C15) & MASK
    n = ((n ^ (n >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    n = ((n ^ (n >> 27)) * 0x94D049BB133111EB) & MASK
    return n ^ (n >> 31)


@dataclass(frozen=True)
class History:
    """What the synthetic bucket holds; every figure is a function of the item number."""

    items: int
    versions: int = 4
    at: float = TIME
    after_percent: int = 10  # items changed in the 24 h after ``at``
    days_after_percent: int = 10  # items changed again more than a day after ``at``
    recent_percent: int = 5  # items changed in the hour before ``at``
    prefix: str = "bench/orders/"
    body_bytes: int = 200

    @property
    def step(self) -> int:
        return NAME_SPACE // max(1, self.items)

    def key_value(self, item: int) -> str:
        """The item's key (``pk``, a string): 32 hex digits that grow with ``item``."""
        return f"{item * self.step:032x}"

    def name(self, item: int) -> str:
        """The item's object name: its plain-text name (the key value itself), which reads like an MD5 name,
        so the bucket lists in item order and a restore cuts it into the 256 ranges of MD5 names."""
        return f"{self.prefix}{self.key_value(item)}"

    def item_of(self, key: str) -> int:
        return int(key[len(self.prefix) :], 16) // self.step

    def kind(self, item: int) -> str:
        roll = mix(item) % 100
        for share, kind in (
            (self.after_percent, AFTER_24H),
            (self.days_after_percent, DAYS_AFTER),
            (self.recent_percent, RECENT),
        ):
            if roll < share:
                return kind
            roll -= share
        return BEFORE

    def event_times(self, item: int) -> list[float]:
        """The events of ``item``, oldest first (version 0 first)."""
        spread = mix(item ^ 0x5EED) % 86_400
        times = [self.at - (self.versions - version) * 5 * DAY - spread for version in range(self.versions)]
        last = self._last_event(item, spread)
        if last is not None:
            times[-1] = last
        return times

    def _last_event(self, item: int, spread: int) -> float | None:
        kind = self.kind(item)
        if kind == AFTER_24H:
            return self.at + 60 + spread % (23 * 3600)
        if kind == DAYS_AFTER:
            return self.at + 2 * DAY + spread * 5
        if kind == RECENT:
            return self.at - spread % 3600
        return None

    def written_times(self, item: int) -> list[float]:
        """S3's write times: each event plus 0.05 to 3.05 s of lag, to the second."""
        lag = mix(item * 64)
        return [
            float(math.floor(event + 0.05 + (lag >> (version * 12)) % 3000 / 1000))
            for version, event in enumerate(self.event_times(item))
        ]

    def changed_after(self) -> int:
        """Items with a change in ``(at, at + 24 h]``: the most metadata reads exact mode may need."""
        return sum(1 for item in range(self.items) if self.kind(item) == AFTER_24H)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class SyntheticStore:
    """A read-only ``ObjectStore`` over a ``History``; ``latency`` is added to every request (a listing
    page of 1,000 entries being one request). ``heads`` and ``gets`` count metadata and body reads."""

    def __init__(self, history: History, *, latency: float = 0.0, extra: Mapping[str, bytes] | None = None) -> None:
        self.history = history
        self.latency = latency
        self.extra = dict(extra or {})  # objects outside the table's folder (a saved schema), by key
        self.heads = 0
        self.gets = 0
        self._lock = threading.Lock()

    def _request(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], **_: Any) -> PutResult:
        raise NotImplementedError("the synthetic bucket is read-only")

    def delete(self, key: str) -> str | None:
        raise NotImplementedError("the synthetic bucket is read-only")

    def versioning_enabled(self) -> bool:
        return True

    def _locate(self, key: str, version_id: str | None) -> tuple[int, int]:
        history = self.history
        try:
            item = history.item_of(key)
            version = history.versions - 1 if version_id is None else int(version_id.split(".")[1])
        except (ValueError, IndexError) as err:
            raise NoSuchVersion(f"{key} {version_id}") from err
        if not (0 <= item < history.items and 0 <= version < history.versions) or history.name(item) != key:
            raise NoSuchVersion(f"{key} {version_id}")
        return item, version

    def _object(self, item: int, version: int, body: bytes) -> StoredObject:
        history = self.history
        meta = vm.VersionMeta(
            event_name=vm.INSERT if version == 0 else vm.MODIFY,
            event_time=history.event_times(item)[version],
            sequence_number=str(item * 100 + version + 1),
            event_id=f"ev-{item}-{version}",
            key={"pk": {"S": history.key_value(item)}},
        )
        return StoredObject(
            key=history.name(item),
            version_id=f"{item}.{version}",
            last_modified=_utc(history.written_times(item)[version]),
            metadata=meta.to_s3(),
            body=body,
            size=history.body_bytes,
            etag=f'"{item:x}{version:02x}"',
        )

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        self._request()
        with self._lock:
            self.heads += 1
        return self._object(*self._locate(key, version_id), b"")

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        self._request()
        with self._lock:
            self.gets += 1
        if key in self.extra:
            body = self.extra[key]
            return StoredObject(key, "extra", _utc(self.history.at), {}, body, len(body))
        item, version = self._locate(key, version_id)
        return self._object(item, version, self.image(item, version))

    def image(self, item: int, version: int) -> bytes:
        filler = "x" * max(0, self.history.body_bytes - 60)
        image = {"pk": {"S": self.history.key_value(item)}, "v": {"N": str(version)}, "data": {"S": filler}}
        return json.dumps(image, separators=(",", ":")).encode("utf-8")

    def _first_after(self, bound: str, inclusive: bool) -> int:
        """The first item whose name is > ``bound`` (>= when ``inclusive``): a binary search."""
        low, high = 0, self.history.items
        while low < high:
            middle = (low + high) // 2
            name = self.history.name(middle)
            if name > bound or (inclusive and name == bound):
                high = middle
            else:
                low = middle + 1
        return low

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        start = self._first_after(prefix, inclusive=True)
        if key_marker:
            start = max(start, self._first_after(key_marker, inclusive=False))
        listed = 0
        for item in range(start, self.history.items):
            key = self.history.name(item)
            if not key.startswith(prefix):
                return
            for entry in self._entries(key, item):
                if listed % LIST_PAGE_SIZE == 0:
                    self._request()
                listed += 1
                yield entry

    def _entries(self, key: str, item: int) -> list[VersionEntry]:
        """One item's listing rows, newest first."""
        newest = self.history.versions - 1
        size = self.history.body_bytes
        written = self.history.written_times(item)
        return [
            VersionEntry(key, f"{item}.{v}", _utc(written[v]), size, v == newest, False, f'"{item:x}{v:02x}"')
            for v in range(newest, -1, -1)
        ]
