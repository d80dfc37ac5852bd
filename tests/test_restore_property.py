"""Model-based property: restoring at T gives exactly the model's state at T.

Random histories of puts, updates and deletes over a few keys (several changes in one second), cut
into random batches, delivered through the real Lambda handler into the in-memory store whose clock
is S3's write time (lagging behind the events, sometimes by hours), with injected write failures,
Lambda's retries from the lowest failed record, and duplicate deliveries to warm and cold functions.
Then, for random TIMEs, ``restore`` into a fresh table, or with ``--sync`` into a filled one; the
first restore sometimes crashed or stopped (as by Ctrl-C) at a random write and resumed, sometimes
against a target slow to acknowledge. The table must equal the model's state at TIME every time.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from builders import put, remove
from ddb_backup import handler as h
from ddb_backup.aws.clients import make_client
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.errors import BackupError
from ddb_backup.format import keys as k
from ddb_backup.restore.execute import RestoreInterrupted, RestoreOptions, restore
from ddb_backup.restore.plan import MD5
from ddb_backup.restore.timeline import STREAM_RETENTION
from ddb_backup.settings import Settings
from ddb_backup.store import PutResult, StoreError
from ddb_backup.store.memory import MemoryStore
from fake_dynamodb import FakeDynamoDB, stored_value
from hypothesis_profiles import scaled

BASE = 1_764_000_000.0
TABLE = "orders"
KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}]
KEY_ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}]
FAR_FUTURE = BASE + 10 * 86400


# -- the model -----------------------------------------------------------------------------------


@dataclass
class Model:
    """Per key, the changes in stream order: (event time, sequence, image or None for a removal)."""

    changes: dict[str, list[tuple[float, int, dict[str, Any] | None]]] = field(default_factory=dict)

    def state_at(self, at: float) -> dict[str, dict[str, Any]]:
        state = {}
        for pk, changes in self.changes.items():
            before = [change for change in changes if change[0] <= at]
            if before and max(before, key=lambda change: (change[0], change[1]))[2] is not None:
                image = max(before, key=lambda change: (change[0], change[1]))[2]
                assert image is not None
                state[k.key_json({"pk": {"S": pk}})] = image
        return state


@st.composite
def histories(draw: st.DrawFn) -> tuple[Model, list[dict[str, Any]]]:
    """A stream: changes of up to 4 keys, event times in whole seconds, often several per second."""
    model, records, present = Model(), [], set()
    moment, sequence = BASE, 100
    for _ in range(draw(st.integers(1, 14))):
        pk = draw(st.sampled_from("abcd"))
        moment += draw(st.sampled_from([0, 0, 0, 1, 1, 2, 60]))
        sequence += draw(st.integers(1, 3))
        keys = {"pk": {"S": pk}}
        if pk in present and draw(st.booleans()):
            records.append(remove(keys, table=TABLE, seq=sequence, at=moment))
            present.discard(pk)
            model.changes.setdefault(pk, []).append((moment, sequence, None))
            continue
        attrs = {"v": {"N": str(draw(st.integers(0, 99)))}, "note": {"S": f"s{sequence}"}}
        records.append(put(keys, attrs, first=pk not in present, table=TABLE, seq=sequence, at=moment))
        present.add(pk)
        model.changes.setdefault(pk, []).append((moment, sequence, {**keys, **attrs}))
    return model, records


# -- delivery: Lambda in front of the real handler -------------------------------------------------


class Clock:
    """S3's clock: whole seconds, as S3 keeps LastModified."""

    def __init__(self) -> None:
        self.now = BASE

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(math.floor(self.now), tz=UTC)


class FailingStore(MemoryStore):
    """Fails the writes whose running number is in ``fail``."""

    def __init__(self, clock: Clock, fail: set[int]) -> None:
        super().__init__(clock=clock)
        self.fail, self.writes = fail, 0

    def _maybe_fail(self) -> None:
        self.writes += 1
        if self.writes in self.fail:
            raise StoreError("injected write failure")

    def put(self, key: str, body: bytes, metadata: Mapping[str, str], **kw: Any) -> PutResult:
        self._maybe_fail()
        return super().put(key, body, metadata, **kw)

    def delete(self, key: str) -> str | None:
        self._maybe_fail()
        return super().delete(key)


@dataclass
class Delivery:
    """How Lambda delivers: batch sizes, lags before each delivery, duplicate deliveries."""

    sizes: list[int]
    lags: list[float]
    duplicates: list[str]  # per batch: "no", "warm" or "cold"
    failures: set[int]


deliveries = st.builds(
    Delivery,
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=20),
    lags=st.lists(st.sampled_from([0.0, 0.3, 1.0, 2.0, 45.0, 5000.0]), min_size=1, max_size=20),
    duplicates=st.lists(st.sampled_from(["no", "no", "warm", "cold"]), min_size=1, max_size=20),
    failures=st.sets(st.integers(1, 40), max_size=6),
)


def capture(store: MemoryStore) -> h.Runtime:
    return h.Runtime(Settings(bucket="bk"), Capture(store, CaptureSettings(workers=4)))


def invoke(records: list[dict[str, Any]]) -> list[str]:
    response = h.handler({"Records": records}, None)
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def deliver(records: list[dict[str, Any]], store: FailingStore, clock: Clock, plan: Delivery) -> None:
    """Every record reaches the bucket; the clock moves forward, never before an event's time, and
    never past the batch's oldest record's time plus the stream's retention (24 h): a stream trims a
    record by then, so no write of it can land later (``restore``'s --max-lag relies on that)."""
    h._runtime = capture(store)
    position, turn, replayed = 0, 0, -1
    try:
        while position < len(records):
            batch = records[position : position + plan.sizes[turn % len(plan.sizes)]]
            times = [r["dynamodb"]["ApproximateCreationDateTime"] for r in batch]
            lagged = max(clock.now, max(times)) + plan.lags[turn % len(plan.lags)]
            clock.now = min(lagged, min(times) + STREAM_RETENTION)
            failed = invoke(batch)
            duplicate = plan.duplicates[turn % len(plan.duplicates)]
            turn += 1
            if failed:  # Lambda retries from the lowest failed record, with everything after it
                sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
                position += sequences.index(failed[0])
            elif duplicate != "no" and replayed != position:
                replayed = position  # delivered again from the same place (a timeout, a lost checkpoint)
                if duplicate == "cold":
                    h._runtime = capture(store)
            else:
                position += len(batch)
    finally:
        h.reset_runtime()


# -- restore -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """How one restore runs: into a filled target with ``--sync``, interrupted at the ``at``-th
    BatchWriteItem (a crash, or a stop as Ctrl-C gives), against a target slow to acknowledge."""

    sync: bool = False
    interrupt: str | None = None  # None, "crash" or "stop"
    at: int = 1
    slow: bool = False


modes = st.builds(
    Mode,
    sync=st.booleans(),
    interrupt=st.sampled_from([None, "crash", "stop"]),
    at=st.integers(1, 8),
    slow=st.booleans(),
)


class Interrupting:
    """A DynamoDB client that, on its ``at``-th BatchWriteItem, fails (not retryably: a crash) or sets
    ``stop`` (a Ctrl-C) once; when ``slow``, every BatchWriteItem takes a millisecond, so batches
    are acknowledged out of order and the last ones late."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls, self.mode = client, 0, Mode()
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def arm(self, mode: Mode) -> threading.Event:
        self.mode, self.calls, self.stop = mode, 0, threading.Event()
        return self.stop

    def batch_write_item(self, **args: Any) -> Any:
        with self._lock:
            self.calls += 1
            due = self.mode.interrupt is not None and self.calls == self.mode.at
        if due and self.mode.interrupt == "crash":
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "crash"}}, "BatchWriteItem")
        if due:
            self.stop.set()
        if self.mode.slow:
            time.sleep(0.001)
        return self.client.batch_write_item(**args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def table_state(client: Any, table: str) -> dict[str, dict[str, Any]]:
    """The table's items as DynamoDB JSON (binary as base64), by key_json."""
    items, args = {}, {"TableName": table}
    while True:
        page = client.scan(**args)
        for item in page["Items"]:
            items[k.key_json({"pk": item["pk"]})] = {name: stored_value(value) for name, value in item.items()}
        if "LastEvaluatedKey" not in page:
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def source_table(dynamodb: Any, name: str = TABLE) -> None:
    dynamodb.create_table(
        TableName=name, KeySchema=KEY_SCHEMA, AttributeDefinitions=KEY_ATTRIBUTES, BillingMode="PAY_PER_REQUEST"
    )


def filled_target(dynamodb: Any, name: str) -> None:
    """A live table to sync: a stale image of every key the histories use, and a key they never use."""
    source_table(dynamodb, name)
    for pk in "abcdz":
        dynamodb.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": {"pk": {"S": pk}, "v": {"N": "-1"}}}}]})


def restore_at(store: MemoryStore, dynamodb: Interrupting, at: float, target: str, folder: Path, mode: Mode) -> None:
    if mode.sync:
        filled_target(dynamodb.client, target)
    options = RestoreOptions(
        bucket="bk",
        source=TABLE,
        target=target,
        at=at,
        workers=3,
        checkpoint=folder / f"{target}.json",
        batch_size=1,
        scheme=None if mode.interrupt is None else MD5,  # many ranges: a crash leaves some finished, some not
        overwrite=mode.sync,
        sync=mode.sync,
    )
    stop = dynamodb.arm(mode)
    try:
        restore(options, store, dynamodb, now=lambda: FAR_FUTURE, stop=stop)
    except (BackupError, RestoreInterrupted) as err:  # the same command with --resume finishes it
        assert mode.interrupt is not None and "--resume" in str(err)
        assert options.checkpoint_path.exists()
        event(f"{mode.interrupt} mid-restore{' (sync)' if mode.sync else ''}, then resumed")
        dynamodb.arm(Mode(slow=mode.slow))
        restore(replace(options, resume=True), store, dynamodb, now=lambda: FAR_FUTURE)
    assert not options.checkpoint_path.exists()


def add_stray_objects(store: MemoryStore) -> None:
    """Objects in the table's folder that are not its items (issue 11.3, 11.2): skipped, never a crash."""
    store.put(f"{TABLE}/stray-list", b"[1, 2]", {})
    store.put(f"{TABLE}/stray-text", b"not json", {})
    store.put(f"{TABLE}/stray-object", b'{"a": 1}', {})
    other = {"pk": {"S": "a"}, "v": {"N": "-7"}}  # another stack's item under prefix TABLE, table "other"
    store.put(f"{TABLE}/other/{k.md5_object_name({'pk': other['pk']})}", json.dumps(other).encode(), {})


def times_to_try(model: Model, clock: Clock) -> list[float]:
    events = sorted({change[0] for changes in model.changes.values() for change in changes})
    return [BASE - 1, *events, *(e + 0.5 for e in events), *(e - 1 for e in events), clock.now, clock.now + 1]


def check(
    model: Model, records: list[dict[str, Any]], plan: Delivery, picks: list[int], mode: Mode, client: Any
) -> None:
    clock = Clock()
    store = FailingStore(clock, plan.failures)
    deliver(records, store, clock, plan)
    store.fail = set()
    add_stray_objects(store)
    candidates = times_to_try(model, clock)
    dynamodb = Interrupting(client)
    source_table(dynamodb)
    with tempfile.TemporaryDirectory() as folder:
        for number, pick in enumerate(picks):
            at = candidates[pick % len(candidates)]
            target = f"restored{number}"
            restore_at(store, dynamodb, at, target, Path(folder), mode if number == 0 else Mode(sync=mode.sync))
            assert table_state(dynamodb, target) == model.state_at(at), f"state at {at - BASE:+}"


ARGUMENTS = (
    histories(),
    deliveries,
    st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
    modes,
)


@settings(max_examples=scaled(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(*ARGUMENTS)
def test_restore_at_any_time_equals_the_model(
    history: tuple[Model, list[dict[str, Any]]], plan: Delivery, picks: list[int], mode: Mode
) -> None:
    model, records = history
    check(model, records, plan, picks, mode, FakeDynamoDB())


@settings(max_examples=scaled(12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(*ARGUMENTS)
def test_restore_at_any_time_equals_the_model_through_moto(
    history: tuple[Model, list[dict[str, Any]]], plan: Delivery, picks: list[int], mode: Mode
) -> None:
    model, records = history
    with mock_aws():
        check(model, records, plan, picks, mode, make_client("dynamodb", region="us-east-1"))


def test_delivery_writes_every_record_within_the_streams_retention() -> None:
    """A stream keeps a record 24 h: no write of it can land later, however long Lambda lags (issue 14.9)."""
    records = [
        put({"pk": {"S": "a"}}, {"v": {"N": str(n)}}, first=n == 0, table=TABLE, seq=100 + n, at=BASE)
        for n in range(20)
    ]
    clock = Clock()
    store = FailingStore(clock, set())
    deliver(records, store, clock, Delivery(sizes=[1], lags=[5000.0], duplicates=["no"], failures=set()))
    written = [entry.last_modified.timestamp() for entry in store.list_versions(f"{TABLE}/")]
    assert len(written) == 20
    assert max(written) <= BASE + STREAM_RETENTION
