"""Restore never loses or invents a row (issue 11): sync after every write, key checks, rejects, stops."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from builders import put
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.errors import BackupError, UserError
from ddb_backup.format import keys as k
from ddb_backup.restore.checkpoint import PHASE_SYNC
from ddb_backup.restore.execute import RestoreInterrupted
from ddb_backup.restore.plan import MD5
from ddb_backup.restore.target import Target, check_items_fit, key_types
from ddb_backup.store.memory import MemoryStore
from fake_dynamodb import CrashAfter, FakeDynamoDB
from test_restore_execute import T0, backup, fake_with_source, key, options, pks, run


class SlowTarget:
    """A DynamoDB client whose BatchWriteItem takes ``delay`` seconds: the last batches land late."""

    def __init__(self, client: FakeDynamoDB, delay: float) -> None:
        self.client, self.delay = client, delay

    def batch_write_item(self, **args: Any) -> Any:
        time.sleep(self.delay)
        return self.client.batch_write_item(**args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def fill(dynamodb: FakeDynamoDB, table: str, numbers: range, extra: int = 0) -> None:
    for n in numbers:
        dynamodb.put_item(TableName=table, Item={**key(n), "v": {"N": "-1"}})
    for n in range(extra):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"stranger{n}"}, "sk": {"N": "1"}})


# -- 11.1: --sync deletes only after every write is acknowledged, from the complete present set ---------


@pytest.mark.parametrize("scheme", [None, MD5])
def test_sync_into_a_filled_target_keeps_what_it_restores_even_when_the_last_writes_land_late(
    tmp_path: Path, scheme: str | None
) -> None:
    # GIVEN a target holding every item (stale) and a stranger, and a target slow to acknowledge writes
    store, dynamodb = backup(), fake_with_source()
    dynamodb.create_table(**{**dynamodb.tables["orders"], "TableName": "copy"})
    fill(dynamodb, "copy", range(10), extra=1)
    # WHEN it is restored with --overwrite --sync to T0 + 200 (items 0..2 removed by then)
    opts = options(tmp_path, at=T0 + 200, overwrite=True, sync=True, scheme=scheme)
    summary = run(store, SlowTarget(dynamodb, 0.2), opts)
    # THEN exactly the state at T0 + 200 is left: the restored items stay, the removed and the stranger go
    assert pks(dynamodb) == [f"p{n}" for n in range(3, 10)]
    assert all(item["v"]["N"] != "-1" for item in dynamodb.dump("copy").values())
    assert (summary.puts, summary.deletes) == (7, 4)


def test_sync_into_the_source_table_itself_deletes_only_what_was_absent_at_t(tmp_path: Path) -> None:
    # GIVEN the source table holding its items 3..9 changed since, and one created after T
    store, dynamodb = backup(), fake_with_source()
    fill(dynamodb, "orders", range(3, 10), extra=1)
    # WHEN it is restored onto itself with --allow-same-table --overwrite --sync
    opts = options(tmp_path, target="orders", allow_same_table=True, at=T0 + 200, overwrite=True, sync=True)
    summary = run(store, SlowTarget(dynamodb, 0.1), opts)
    # THEN the items present at T are there with their images at T, the later one is gone
    assert pks(dynamodb, "orders") == [f"p{n}" for n in range(3, 10)]
    assert {item["v"]["N"] for item in dynamodb.dump("orders").values()} == {str(n) for n in range(3, 10)}
    assert (summary.puts, summary.deletes) == (7, 1)


def test_a_crash_between_the_writes_and_the_deletes_resumes_into_the_sync_phase(tmp_path: Path) -> None:
    # GIVEN a sync restore whose first delete dies (every write acknowledged, the checkpoint in its sync phase)
    store, dynamodb = backup(), fake_with_source()
    dynamodb.create_table(**{**dynamodb.tables["orders"], "TableName": "copy"})
    fill(dynamodb, "copy", range(10), extra=2)
    opts = options(tmp_path, at=T0 + 200, overwrite=True, sync=True, scheme=MD5)
    dying = DiesOnFirstDelete(dynamodb)
    with pytest.raises(Exception, match="crash"):
        run(store, dying, opts)
    saved = json.loads((tmp_path / "cp.json").read_text())
    assert saved["phase"] == PHASE_SYNC
    # WHEN it is resumed
    summary = run(store, dynamodb, replace(opts, resume=True))
    # THEN nothing is written again, the deletes are done, and the table is the state at T
    assert pks(dynamodb) == [f"p{n}" for n in range(3, 10)]
    assert summary.deletes == 5 and summary.puts == 0
    assert not (tmp_path / "cp.json").exists()


class DiesOnFirstDelete:
    def __init__(self, client: FakeDynamoDB) -> None:
        self.client = client

    def batch_write_item(self, **args: Any) -> Any:
        if any("DeleteRequest" in request for requests in args["RequestItems"].values() for request in requests):
            raise RuntimeError("crash")
        return self.client.batch_write_item(**args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


# -- 11.4: a target keyed otherwise than the backup is refused before the first write -------------------


def keyed_target(dynamodb: FakeDynamoDB, name: str, *attributes: tuple[str, str]) -> None:
    roles = ("HASH", "RANGE")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": a, "KeyType": role} for (a, _), role in zip(attributes, roles, strict=False)],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in attributes],
    )


def legacy_backup(key_of: Any = key) -> MemoryStore:
    """Items 0..4 as the original tool wrote them: MD5 of JSON.stringify(Keys), no metadata."""
    store = MemoryStore(clock=lambda: datetime.fromtimestamp(T0, tz=UTC))
    for n in range(5):
        keys_text = json.dumps(key_of(n), separators=(",", ":"))
        name = hashlib.md5(keys_text.encode(), usedforsecurity=False).hexdigest()
        store.put(f"orders/{name}", json.dumps({**key(n), "v": {"N": str(n)}}).encode(), {})
    return store


def pk_only_backup() -> MemoryStore:
    """Items 0..4 of a table keyed on pk alone (each image also carries an sk attribute)."""
    store = MemoryStore(clock=lambda: datetime.fromtimestamp(T0, tz=UTC))
    capture = Capture(store, CaptureSettings(workers=2), lambda table: k.KeySchema("pk"))
    records = [put({"pk": {"S": f"p{n}"}}, {"sk": {"N": str(n)}}, at=T0) for n in range(5)]
    assert not capture.process(records).failures
    return store


PK_SK = (("pk", "S"), ("sk", "N"))
CASES = {  # backup keyed pk + sk unless it says otherwise
    "fewer key attributes": (PK_SK, (("pk", "S"),)),
    "same names, other types": (PK_SK, (("pk", "S"), ("sk", "S"))),
    "more key attributes": ((("pk", "S"),), PK_SK),
}


def source_of(case: str, source: str) -> tuple[MemoryStore, FakeDynamoDB]:
    backup_key, _ = CASES[case]
    pk_only = len(backup_key) == 1
    if "original" in source:
        store = legacy_backup((lambda n: {"pk": {"S": f"p{n}"}}) if pk_only else key)
    else:
        store = pk_only_backup() if pk_only else backup()
    dynamodb = FakeDynamoDB()
    if source == "live":
        keyed_target(dynamodb, "orders", *backup_key)
    return store, dynamodb


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("source", ["gone, no saved schema", "live", "gone, original tool's objects"])
def test_a_target_keyed_otherwise_is_refused_before_anything_is_written(tmp_path: Path, case: str, source: str) -> None:
    # GIVEN a backup, and an existing target keyed otherwise
    store, dynamodb = source_of(case, source)
    keyed_target(dynamodb, "copy", *CASES[case][1])
    # WHEN it is restored into that target
    with pytest.raises(UserError, match=r"keyed .*--to-table NEW_NAME") as refused:
        run(store, dynamodb, options(tmp_path, overwrite=True, at=T0 + 1))
    # THEN nothing is written, no checkpoint is left, and the message names the target's key
    assert dynamodb.items["copy"] == {}
    assert not (tmp_path / "cp.json").exists()
    assert "'copy' is keyed pk (S, hash)" in str(refused.value)


@pytest.mark.parametrize("source", ["gone, no saved schema", "gone, original tool's objects"])
def test_a_target_with_the_backups_key_is_accepted_without_any_schema(tmp_path: Path, source: str) -> None:
    store, dynamodb = source_of("fewer key attributes", source)
    keyed_target(dynamodb, "copy", *PK_SK)
    run(store, dynamodb, options(tmp_path, at=T0 + 1))
    assert pks(dynamodb) == [f"p{n}" for n in range(10 if "original" not in source else 5)]


def plain_text_backup() -> MemoryStore:
    """Items 0..4 keyed pk (hash) + sk (range), named in plain text: ``p0 | 0`` says which key is the hash."""
    store = MemoryStore(clock=lambda: datetime.fromtimestamp(T0, tz=UTC))
    capture = Capture(store, CaptureSettings(workers=2, plain_text=True), lambda table: k.KeySchema("pk", "sk"))
    assert not capture.process([put(key(n), {"v": {"N": str(n)}}, at=T0) for n in range(5)]).failures
    return store


@pytest.mark.parametrize("source", ["live", "gone, our plain-text names"])
def test_a_target_with_the_key_roles_swapped_is_refused_when_the_backup_says_the_roles(
    tmp_path: Path, source: str
) -> None:
    # GIVEN a backup keyed pk (hash) + sk (range), and a target keyed sk (hash) + pk (range)
    store, dynamodb = plain_text_backup(), FakeDynamoDB()
    if source == "live":
        keyed_target(dynamodb, "orders", *PK_SK)
    keyed_target(dynamodb, "copy", ("sk", "N"), ("pk", "S"))
    # WHEN it is restored into that target, THEN it is refused (the same names in the same roles)
    with pytest.raises(UserError, match=r"keyed sk \(N, hash\) \+ pk \(S, range\).*--to-table NEW_NAME"):
        run(store, dynamodb, options(tmp_path, overwrite=True, at=T0 + 1))
    assert dynamodb.items["copy"] == {}


# -- 11.5: an item the target refuses is set aside; every other item is restored ---------------------------

GSI_REASON = (
    "One or more parameter values are not valid. A value specified for a secondary index key is not "
    "supported. The AttributeValue for a key attribute cannot contain an empty string value. "
    "IndexName: by-email, IndexKey: email"
)


class GsiTarget:
    """Refuses, as AWS does, a whole BatchWriteItem holding an item whose GSI key ``email`` is empty."""

    def __init__(self, client: FakeDynamoDB) -> None:
        self.client, self.sizes = client, []  # type: list[int]

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> Any:
        requests = next(iter(RequestItems.values()))
        self.sizes.append(len(requests))
        if any(r.get("PutRequest", {}).get("Item", {}).get("email") == {"S": ""} for r in requests):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": GSI_REASON}}, "BatchWriteItem")
        return self.client.batch_write_item(RequestItems=RequestItems)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def backup_with_emails(bad: set[int]) -> MemoryStore:
    store = MemoryStore(clock=lambda: datetime.fromtimestamp(T0, tz=UTC))
    capture = Capture(store, CaptureSettings(workers=2), lambda table: k.KeySchema("pk", "sk"))
    records = [put(key(n), {"email": {"S": "" if n in bad else f"u{n}@x"}}, at=T0) for n in range(40)]
    assert not capture.process(records).failures
    return store


def test_items_the_target_refuses_go_to_a_private_rejects_file_and_the_rest_is_restored(tmp_path: Path) -> None:
    # GIVEN 40 items, two with an empty email, and a target whose GSI on email refuses those
    store, dynamodb = backup_with_emails({7, 31}), fake_with_source()
    target = GsiTarget(dynamodb)
    # WHEN it is restored in batches of 25
    summary = run(store, target, options(tmp_path, at=T0 + 1))
    # THEN the 38 others are restored, the two are in the rejects file (0600) with DynamoDB's reason
    assert len(pks(dynamodb)) == 38 and (summary.puts, summary.rejected) == (38, 2)
    rejects = tmp_path / "cp.rejects.jsonl"
    assert summary.rejects_path == rejects and oct(rejects.stat().st_mode & 0o777) == "0o600"
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert sorted(line["Item"]["pk"]["S"] for line in lines) == ["p31", "p7"]
    assert all(line["reason"] == GSI_REASON and line["Item"]["email"] == {"S": ""} for line in lines)
    assert any("rejected by the target: 2" in line for line in summary.lines())
    # and the bisection kept the calls few: log2(25) per bad item on top of the batches
    assert len(target.sizes) <= 2 + 2 * 2 * 5


def test_a_resume_after_a_crash_does_not_fail_on_a_rejected_item_again(tmp_path: Path) -> None:
    # GIVEN a restore that crashed after a reject (the bad item's range finished, others not)
    store, dynamodb = backup_with_emails({3}), fake_with_source()
    opts = options(tmp_path, at=T0 + 1, scheme=MD5, batch_size=1, workers=1)
    crashing = CrashAfter(GsiTarget(dynamodb), 20)
    with pytest.raises(BackupError, match="--resume"):
        run(store, crashing, opts)
    # WHEN it is resumed
    summary = run(store, GsiTarget(dynamodb), replace(opts, resume=True))
    # THEN it finishes: every other item is there, the bad one is in the rejects file
    assert len(pks(dynamodb)) == 39
    assert not (tmp_path / "cp.json").exists()
    rejected = {
        json.loads(line)["Item"]["pk"]["S"] for line in (tmp_path / "cp.rejects.jsonl").read_text().splitlines()
    }
    assert rejected == {"p3"} and summary.rejected in (0, 1)


def test_an_image_without_the_targets_key_attributes_is_rejected_not_written(tmp_path: Path) -> None:
    store, dynamodb = backup(), fake_with_source()
    name = k.object_key_for("", "orders", k.md5_object_name(key(77)))
    store.put(name, json.dumps({"pk": {"S": "p77"}, "v": {"N": "1"}}).encode(), {})  # no sk: not an item of the table
    summary = run(store, dynamodb, options(tmp_path, at=T0 + 200))
    assert len(pks(dynamodb)) == 7 and summary.rejected == 1
    assert "has no key attribute 'sk'" in (tmp_path / "cp.rejects.jsonl").read_text()


# -- 11.6: a stop event ends the run quickly; --resume continues exactly ----------------------------------


class StopAfter:
    """Sets ``stop`` once ``n`` batches are written, then keeps acknowledging slowly."""

    def __init__(self, client: FakeDynamoDB, n: int, stop: threading.Event) -> None:
        self.client, self.n, self.stop, self.calls, self.after_stop = client, n, stop, 0, 0
        self._lock = threading.Lock()

    def batch_write_item(self, **args: Any) -> Any:
        with self._lock:
            self.calls += 1
            if self.stop.is_set():
                self.after_stop += 1
            elif self.calls >= self.n:
                self.stop.set()
        time.sleep(0.01)
        return self.client.batch_write_item(**args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


@pytest.mark.parametrize("sync", [False, True])
def test_a_stop_ends_the_restore_with_a_checkpoint_that_resume_finishes(tmp_path: Path, sync: bool) -> None:
    # GIVEN a restore of 40 items, one per batch, into a filled target (with --sync: plus strangers)
    store, dynamodb = backup_with_emails(set()), fake_with_source()
    dynamodb.create_table(**{**dynamodb.tables["orders"], "TableName": "copy"})
    fill(dynamodb, "copy", range(40), extra=3)
    stop = threading.Event()
    opts = options(tmp_path, at=T0 + 1, scheme=MD5, batch_size=1, workers=4, overwrite=True, sync=sync)
    client = StopAfter(dynamodb, 10, stop)
    # WHEN the stop event is set after 10 batches
    with pytest.raises(RestoreInterrupted, match="--resume"):
        run(store, client, opts, stop=stop)
    # THEN only the batches already in flight were sent after it, nothing was deleted, a checkpoint is left
    assert client.after_stop <= 4  # at most one batch in flight per writer thread
    assert len(dynamodb.items["copy"]) == 43
    assert (tmp_path / "cp.json").exists()
    # WHEN resumed, THEN the table is exactly the state at T, and no warning says the backup is empty
    summary = run(store, dynamodb, replace(opts, resume=True))
    strangers = [] if sync else [f"stranger{n}" for n in range(3)]
    assert pks(dynamodb) == sorted([*(f"p{n}" for n in range(40)), *strangers])
    assert all(item["email"]["S"] for item in dynamodb.dump("copy").values() if "email" in item)
    assert not any(item.get("v") == {"N": "-1"} for item in dynamodb.dump("copy").values())
    assert summary.warnings == [] and summary.ranges_already_done > 0
    assert not (tmp_path / "cp.json").exists()


def test_the_key_check_passes_over_stray_objects_and_another_stacks_items_in_the_folder(tmp_path: Path) -> None:
    # GIVEN the backup keyed pk + sk, and in its folder a JSON list and stack B's item keyed on id (N)
    store = backup()
    store.put("orders/!stray", b"[1, 2]", {})
    other = k.object_key_for("orders", "-customers", k.md5_object_name({"id": {"N": "1"}}))  # listed first
    store.put(other, json.dumps({"id": {"N": "1"}}).encode(), {"format": "1", "key": '{"id":{"N":"1"}}'})
    dynamodb = FakeDynamoDB()
    keyed_target(dynamodb, "copy", *PK_SK)
    # WHEN the key check runs, THEN one item that fits is enough: nothing is refused
    target = Target("copy", k.KeySchema("pk", "sk"), created=False, key_types=key_types(dynamodb.tables["copy"]))
    check_items_fit(store, "orders/", target)
