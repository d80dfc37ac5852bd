"""Requests per item: the version a restore writes is read once, and its listing stops at its range's end.

GIVEN items whose change in effect at T was written to S3 after T (the stream lagged), items changed
after T, and items changed long before, WHEN restored, THEN each item costs one GET for its body, plus
one HEAD only when a version after T has to be placed: never a HEAD and a GET of the same version.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builders import put
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.format import keys as k
from ddb_backup.restore.execute import RestoreOptions, restore
from ddb_backup.store import StoredObject, VersionEntry
from ddb_backup.store.memory import MemoryStore
from fake_dynamodb import FakeDynamoDB
from test_restore_execute import fake_with_source, key, pks

T0 = 1_764_000_000.0
AT = T0 + 50


class Counting:
    """A store that counts GET and HEAD requests by object key."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.reads: Counter[tuple[str, str]] = Counter()

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], **kw: Any) -> Any:
        return self.inner.put(key, body, metadata, **kw)

    def delete(self, key: str) -> str | None:
        return self.inner.delete(key)

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        self.reads["GET", key] += 1
        return self.inner.get(key, version_id)

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        self.reads["HEAD", key] += 1
        return self.inner.head(key, version_id)

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        return self.inner.list_versions(prefix, key_marker=key_marker)

    def versioning_enabled(self) -> bool:
        return True


def backup() -> MemoryStore:
    """Items 0-2 put at T0; item 0 changed at AT - 10 but written at AT + 10 (lag); item 1 changed at
    AT + 100 (after T); item 2 never again."""
    clock = {"now": T0}
    store = MemoryStore(clock=lambda: datetime.fromtimestamp(clock["now"], tz=UTC))
    capture = Capture(store, CaptureSettings(workers=1), lambda table: k.KeySchema("pk", "sk"))
    assert not capture.process([put(key(n), {"v": {"N": "0"}}, at=T0) for n in range(3)]).failures
    clock["now"] = AT + 10
    assert not capture.process([put(key(0), {"v": {"N": "1"}}, first=False, at=AT - 10)]).failures
    clock["now"] = AT + 100
    assert not capture.process([put(key(1), {"v": {"N": "1"}}, first=False, at=AT + 100)]).failures
    return store


def object_key(n: int) -> str:
    return "orders/" + k.md5_object_name(k.canonical_key(key(n)))


def test_each_item_reads_its_chosen_version_once(tmp_path: Path) -> None:
    inner = backup()
    store, dynamodb = Counting(inner), fake_with_source()
    options = RestoreOptions(
        bucket="bk", source="orders", target="copy", at=AT, checkpoint=tmp_path / "cp.json", workers=2
    )
    summary = restore(options, store, dynamodb, now=lambda: T0 + 1000)
    assert summary.puts == 3 and pks(dynamodb) == ["p0", "p1", "p2"]
    items = {json_v(dynamodb, n) for n in range(3)}
    assert items == {("p0", "1"), ("p1", "0"), ("p2", "0")}
    reads = {name: dict(counts) for name, counts in _by_item(store.reads).items()}
    assert reads[object_key(0)] == {"GET": 1}  # placed by its metadata, and that GET's body is written
    assert sum(reads[object_key(1)].values()) == 2  # one request beyond its body: the change after T
    assert reads[object_key(2)] == {"GET": 1}


def _by_item(reads: Counter[tuple[str, str]]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for (kind, name), count in reads.items():
        out.setdefault(name, Counter())[kind] += count
    return out


def json_v(dynamodb: FakeDynamoDB, n: int) -> tuple[str, str]:
    import json

    for identity, item in dynamodb.dump("copy").items():
        if json.loads(identity)["pk"]["S"] == f"p{n}":
            return f"p{n}", item["v"]["N"]
    raise AssertionError(f"p{n} not restored")
