"""``diff``: items added, removed and changed between two times, from the backup alone."""

from __future__ import annotations

import json
import time
from typing import Any

from click.testing import CliRunner
from moto import mock_aws

from builders import put, remove
from ddb_backup.cli import cli
from ddb_backup.format.version_meta import VersionMeta
from ddb_backup.inspect.diff import DiffCounts, diff_table, states_at_two
from ddb_backup.restore.plan import group_versions, table_ranges
from ddb_backup.store import VersionEntry
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.s3 import S3Store
from inspect_support import BUCKET, SCHEMA, Clock, backed_up, memory_store, versioned_bucket

T0 = 1_764_000_000.0


def key(name: str) -> dict[str, Any]:
    return {"pk": {"S": name}}


def history(t0: float = T0) -> list[dict[str, Any]]:
    """Before T0+100: a, b, c, e exist. After: b changed, c removed, d added, e written again unchanged."""
    T0 = t0
    return [
        put(key("a"), {"v": {"N": "1"}}, at=T0),
        put(key("b"), {"v": {"N": "1"}}, at=T0 + 1),
        put(key("c"), {"v": {"N": "1"}}, at=T0 + 2),
        put(key("e"), {"v": {"N": "1"}}, at=T0 + 3),
        put(key("b"), {"v": {"N": "2"}, "w": {"S": "new"}}, first=False, at=T0 + 200),
        remove(key("c"), {"v": {"N": "1"}}, at=T0 + 201),
        put(key("d"), {"v": {"N": "1"}}, at=T0 + 202),
        put(key("e"), {"v": {"N": "1"}}, first=False, at=T0 + 203),
    ]


def run(store: Any, start: float, end: float) -> tuple[dict[str, Any], DiffCounts]:
    counts = DiffCounts()
    ranges = table_ranges(store, "", "orders")
    changes = {c.key["pk"]["S"]: c for c in diff_table(store, ranges, start, end, counts, schema=SCHEMA)}
    return changes, counts


def test_added_removed_changed_and_an_identical_rewrite_is_unchanged() -> None:
    clock = Clock()
    store = memory_store(clock)
    backed_up(store, history(), clock=clock)
    # WHEN the backup is compared between T0+100 and T0+1000
    changes, counts = run(store, T0 + 100, T0 + 1000)
    # THEN
    assert {name: c.kind for name, c in changes.items()} == {"b": "changed", "c": "removed", "d": "added"}
    assert changes["b"].changes.as_dict() == {"added": ["w"], "removed": [], "changed": ["v"]}
    assert (counts.added, counts.removed, counts.changed, counts.unchanged) == (1, 1, 1, 2)


def test_the_same_version_at_both_times_is_not_read() -> None:
    class Counting(MemoryStore):
        gets = 0

        def get(self, key: str, version_id: str | None = None) -> Any:
            Counting.gets += 1
            return super().get(key, version_id)

    clock = Clock()
    store = Counting(clock=clock)
    backed_up(store, history()[:4], clock=clock)
    changes, counts = run(store, T0 + 100, T0 + 1000)
    assert changes == {} and counts.unchanged == 4 and Counting.gets == 0


def test_both_times_are_decided_from_one_listing_reading_each_version_once() -> None:
    # GIVEN versions all written close to both times (every one needs its metadata)
    def entry(n: int) -> VersionEntry:
        from datetime import UTC, datetime

        return VersionEntry("t/x", f"v{n}", datetime.fromtimestamp(T0 + n, tz=UTC), 10, False, etag="e")

    reads: list[str] = []

    def read(e: VersionEntry) -> VersionMeta:
        reads.append(e.version_id)
        return VersionMeta("MODIFY", T0 + int(e.version_id[1:]), e.version_id[1:])

    versions = [entry(n) for n in range(1, 6)]
    pair, count = states_at_two(versions, T0 + 2, T0 + 4, read)
    assert pair.before.version is not None and pair.before.version.version_id == "v2"
    assert pair.after.version is not None and pair.after.version.version_id == "v4"
    assert sorted(reads) == sorted(set(reads)) and count == len(reads)
    assert list(group_versions(reversed(versions))) == [versions]


@mock_aws
def test_diff_command_against_s3() -> None:
    # GIVEN changes made a while ago (S3 stamps the writes now, as it would shortly after each change)
    now = time.time()
    s3 = versioned_bucket()
    backed_up(S3Store(s3, BUCKET), history(now - 1000), plain_text=True)  # 95 key ranges, not 256: quicker
    args = ["diff", "--bucket", BUCKET, "--table", "orders", "--from", "-900s", "--to", str(now)]
    result = CliRunner().invoke(cli, [*args, "--json"])
    text = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["added"] == 1 and data["counts"]["removed"] == 1 and data["counts"]["changed"] == 1
    assert sorted(c["kind"] for c in data["changes"]) == ["added", "changed", "removed"]
    assert text.exit_code == 0 and "1 added, 1 removed, 1 changed, 2 unchanged" in text.output
