"""A key range's listing stops at the range's end: pages sized to what is left, not full pages past it.

GIVEN an S3 client stand-in that answers ListObjectVersions from a sorted set of keys (honouring
MaxKeys and the markers) and counts the rows it answers, WHEN a restore's 256 key ranges are listed
through ``S3Store``, THEN every range yields exactly its own versions and the rows answered are about
the bucket's versions (not 1.3-2.6x, as with full 1,000-row pages).
"""

from __future__ import annotations

import bisect
import hashlib
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ddb_backup.restore.ranges import KeyRange, key_ranges
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.pages import FIRST_PAGE, MAX_PAGE, PageSizes, key_position
from ddb_backup.store.retry import RetryingStore
from ddb_backup.store.s3 import S3Store

FOLDER = "bk/orders/"
WHEN = datetime(2026, 11, 1, tzinfo=UTC)


class ListingClient:
    """ListObjectVersions over ``versions`` of each key, counting requests and rows answered."""

    def __init__(self, keys: list[str], versions: int) -> None:
        self.keys = sorted(keys, key=lambda key: key.encode("utf-8"))
        self.versions = versions
        self.requests = 0
        self.rows = 0

    def _rows(self, prefix: str, marker: str | None, version_marker: str | None) -> Any:
        raw = [key.encode("utf-8") for key in self.keys] if not hasattr(self, "_raw") else self._raw
        self._raw = raw
        start = bisect.bisect_left(raw, max(prefix, marker or "").encode("utf-8"))
        for key in self.keys[start:]:
            if not key.startswith(prefix):
                return
            for number in range(self.versions - 1, -1, -1):
                if key == marker and (version_marker is None or int(version_marker) <= number):
                    continue
                yield key, number

    def list_object_versions(self, **args: Any) -> dict[str, Any]:
        self.requests += 1
        limit = args["MaxKeys"]
        rows = []
        truncated = False
        for key, number in self._rows(args["Prefix"], args.get("KeyMarker"), args.get("VersionIdMarker")):
            if len(rows) == limit:
                truncated = True
                break
            rows.append({"Key": key, "VersionId": str(number), "LastModified": WHEN, "Size": 10, "IsLatest": False})
        self.rows += len(rows)
        page: dict[str, Any] = {"Versions": rows, "IsTruncated": truncated}
        if truncated:
            page["NextKeyMarker"], page["NextVersionIdMarker"] = rows[-1]["Key"], rows[-1]["VersionId"]
        return page


def md5_keys(count: int) -> list[str]:
    return [FOLDER + hashlib.md5(str(n).encode(), usedforsecurity=False).hexdigest() for n in range(count)]


def listed(store: Any, ranges: list[KeyRange]) -> dict[int, list[tuple[str, str]]]:
    return {r.index: [(e.key, e.version_id) for e in r.list_versions(store)] for r in ranges}


def test_md5_ranges_read_about_the_buckets_versions_and_each_exactly_its_own() -> None:
    client = ListingClient(md5_keys(50_000), versions=4)
    ranges = key_ranges(FOLDER, md5_names=True)
    got = listed(RetryingStore(S3Store(client, "b")), ranges)
    for key_range in ranges:
        expected = [(key, str(n)) for key in client.keys if key_range.contains(key) for n in (3, 2, 1, 0)]
        assert got[key_range.index] == expected
    total = 50_000 * 4
    assert sum(len(rows) for rows in got.values()) == total
    assert client.rows <= 1.08 * total, f"read {client.rows / total:.2f}x the bucket's versions"
    assert client.requests <= 5 * len(ranges)  # a few pages per range, never many


def test_text_ranges_with_unevenly_spread_names_stay_exact_and_cost_few_pages() -> None:
    keys = [f"{FOLDER}user#{n:05d} | {n % 7}" for n in range(3000)] + [f"{FOLDER}a{n}" for n in range(50)]
    client = ListingClient(keys, versions=2)
    ranges = key_ranges(FOLDER, md5_names=False)
    got = listed(S3Store(client, "b"), ranges)
    assert sorted(row for rows in got.values() for row in rows) == sorted(
        (key, str(n)) for key in client.keys for n in (1, 0)
    )
    # an empty range costs one first page at most (full 1,000-row pages: 95,000 rows for nothing)
    assert client.rows <= 1.3 * len(keys) * 2 + len(ranges) * FIRST_PAGE
    assert client.requests <= 2 * len(ranges) + 3 * (len(keys) * 2 // MAX_PAGE + 1)


def test_a_resumed_range_starts_after_its_marker() -> None:
    client = ListingClient(md5_keys(2000), versions=2)
    key_range = key_ranges(FOLDER, md5_names=True)[10]
    inside = [key for key in client.keys if key_range.contains(key)]
    rows = list(key_range.list_versions(S3Store(client, "b"), after=inside[2]))
    assert [key for key, _ in dict.fromkeys((e.key, None) for e in rows)] == inside[3:]


@given(st.lists(st.text(alphabet="ab/ |é0f\U0001f600", min_size=1, max_size=6), max_size=60, unique=True))
def test_any_names_are_listed_once_by_exactly_one_range(names: list[str]) -> None:
    store = MemoryStore()
    for name in names:
        store.put(FOLDER + name, b"{}", {})
    wanted = sorted(FOLDER + name for name in names)
    for md5_names in (True, False):
        got = sorted(e.key for r in key_ranges(FOLDER, md5_names=md5_names) for e in r.list_versions(store))
        assert got == wanted
    client = ListingClient([FOLDER + name for name in names], versions=1)
    got = sorted(e.key for r in key_ranges(FOLDER, md5_names=False) for e in r.list_versions(S3Store(client, "b")))
    assert got == wanted


def test_positions_and_page_sizes() -> None:
    assert key_position("k/ab80", "k/ab", "k/ac") == 0.5
    assert key_position("k/ab", "k/ab", "k/ac") == 0.0
    assert key_position("k/b", "k/ab", "k/ac") == 1.0
    sizes = PageSizes("k/ac", "k/ab")
    assert sizes.first() < MAX_PAGE
    assert 100 <= sizes.next(100, 100, "k/ab01", "k/ab80") <= 120  # half done, 100 keys seen: about as many again
    assert sizes.next(100, 100, "k/ab81", "k/abff") >= 40  # fell short twice: the floor doubles
    sharp = PageSizes("k/ac", "k/ab")
    assert sharp.next(100, 4, "k/ab01", "k/ab02") < 100 * 127  # a rough guess (4 keys seen) asks for less
