"""Splitting a table's object names into key ranges: for parallel listing and for ``--segment``.

Range ``i`` holds the keys ``k`` with ``bounds[i] < k <= bounds[i + 1]`` (the first starts at the
beginning, the last runs to the end), so the ranges cover every key exactly once whatever the
names look like. MD5 names spread evenly over hex boundaries; other names (plain text, tenants)
are split at printable ASCII characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ddb_backup.store import ObjectStore, VersionEntry, list_until

HEX = "0123456789abcdef"
MD5_BOUNDARIES = tuple(a + b for a in HEX for b in HEX)[1:]  # 255 cuts -> 256 ranges
TEXT_BOUNDARIES = tuple(chr(c) for c in range(0x21, 0x7F))  # 94 cuts -> 95 ranges


@dataclass(frozen=True)
class KeyRange:
    """Keys under ``prefix`` after ``start`` (exclusive) up to ``end`` (inclusive); None: open."""

    index: int
    prefix: str
    start: str | None
    end: str | None

    def contains(self, key: str) -> bool:
        return (self.start is None or _b(key) > _b(self.start)) and (self.end is None or _b(key) <= _b(self.end))

    def list_versions(self, store: ObjectStore, *, after: str | None = None) -> Iterator[VersionEntry]:
        """The versions of this range's keys, in listing order; ``after`` resumes past a key."""
        marker = self.start
        if after is not None and (marker is None or _b(after) > _b(marker)):
            marker = after
        if self.end is None:
            yield from store.list_versions(self.prefix, key_marker=marker)
        else:  # pages sized to end at the range's end (store.pages), not full pages past it
            yield from list_until(store, self.prefix, end=self.end, key_marker=marker)


def _b(text: str) -> bytes:
    return text.encode("utf-8")  # S3 orders keys by their UTF-8 bytes


def key_ranges(prefix: str, *, md5_names: bool) -> list[KeyRange]:
    cuts = [prefix + cut for cut in (MD5_BOUNDARIES if md5_names else TEXT_BOUNDARIES)]
    bounds: list[str | None] = [None, *cuts, None]
    return [KeyRange(index, prefix, bounds[index], bounds[index + 1]) for index in range(len(bounds) - 1)]


def segment_ranges(ranges: list[KeyRange], segment: int, total_segments: int) -> list[KeyRange]:
    """The ranges of one segment of ``total_segments`` (round robin, like a parallel scan's share)."""
    if total_segments < 1 or not 0 <= segment < total_segments:
        raise ValueError(f"segment {segment} is not in 0..{total_segments - 1}")
    return [r for r in ranges if r.index % total_segments == segment]
