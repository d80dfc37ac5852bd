"""Capture under injected S3 faults, with Lambda's retries: every change lands, in order per item.

The model is the synthetic shard itself (``ddb_backup.lab.soak.Workload``); ``check_versions`` reads back
every item's versions and compares them with the item's changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ddb_backup import handler
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.format import keys as k
from ddb_backup.lab.faults import FaultyStore
from ddb_backup.lab.lambda_sim import CaptureFunction, ShardDelivery
from ddb_backup.lab.soak import START_TIME, TABLE, Workload, check_versions, quiet_capture_logs, run_soak
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.s3 import S3Store

NAMER = k.ItemNamer("", TABLE, plain_text=False)


def deliver(store: Any, records: list[dict[str, Any]], *, cold_start_rate: float, seed: int) -> ShardDelivery:
    delivery = ShardDelivery(
        lambda: CaptureFunction(Capture(store, CaptureSettings(workers=8))),
        batch_size=100,
        max_attempts=50,
        cold_start_rate=cold_start_rate,
        seed=seed,
    )
    with quiet_capture_logs():
        delivery.deliver(records)
    delivery.close()
    return delivery


@pytest.mark.parametrize("seed", [1, 2])
def test_every_change_lands_in_order_under_ten_percent_s3_faults(seed: int) -> None:
    # GIVEN 3,000 changes to 300 items and a store that fails 10% of requests (2% each of 500,
    # 503 SlowDown, timeout, connection reset, and a write whose response is lost)
    window = Workload(items=300, seed=seed).window(3000)
    inner = MemoryStore()
    store = FaultyStore.with_fault_rate(inner, 0.10, seed=seed)
    # WHEN Lambda delivers them in batches of 100, retrying from each partial batch response,
    # sometimes on a cold container
    delivery = deliver(store, window.records, cold_start_rate=0.3, seed=seed)
    # THEN every item's versions are its changes, in order, and the newest is its final state
    assert check_versions(inner, window, NAMER) == []
    stats = delivery.stats
    assert stats.batches == 30 and stats.retries >= 30 and stats.cold_starts >= 5
    assert store.injected >= 200 and store.counts["lost_response"] >= 40


def test_the_check_finds_a_lost_a_reordered_and_a_stale_version() -> None:
    window = Workload(items=5, seed=3).window(60)
    inner = MemoryStore()
    deliver(inner, window.records, cold_start_rate=0.0, seed=0)
    assert check_versions(inner, window, NAMER) == []
    first, second, third = list(window.changes)[:3]

    lost = dict(window.changes)
    lost[first] = [*lost[first][:1], *lost[first]]  # a change the store never got
    reordered = dict(window.changes)
    reordered[second] = list(reversed(reordered[second]))
    for changes in (lost, reordered):
        problems = check_versions(inner, type(window)(window.records, changes, window.keys), NAMER)
        assert len(problems) == 1 and "differ from the changes" in problems[0]

    # An older image written again after the newest: the history still reads right, the newest is wrong.
    object_key = NAMER.object_key(window.keys[third])
    stale = inner.get(object_key, [r for r in inner.list_versions(object_key) if not r.is_delete_marker][-1].version_id)
    inner.put(object_key, stale.body, stale.metadata)
    problems = check_versions(inner, window, NAMER)
    assert any(object_key in problem for problem in problems)


def test_a_small_soak_keeps_memory_flat() -> None:
    # GIVEN 2,000 records in 5 windows of 400 over 200 items, with 10% S3 faults and cold starts
    report = run_soak(records=2000, items=200, window=400, workers=8, seed=5, trace_memory=True)
    # THEN nothing is lost, and capture's own memory (the store is dropped after each checked
    # window) grows by less than 200 KB from the end of window 2 to the end of window 5 (1,200
    # records): a leak of 170 bytes per record would fail this
    assert report.problems == []
    assert len(report.samples) == 5 and report.delivery.retries > 0
    assert report.growth() < 200_000, [sample.traced_bytes for sample in report.samples]


class HandlerFunction:
    """The Lambda entry point as a deployed function; making one is a cold start."""

    def __init__(self) -> None:
        handler.reset_runtime()

    def __call__(self, records: list[Any]) -> Any:
        return handler.handler({"Records": records}, None)


def test_the_handler_on_s3_converges_under_faults_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the handler on moto's S3, its store behind 10% injected faults
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="backups")
        s3.put_bucket_versioning(Bucket="backups", VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setenv("BackupBucket", "backups")
        monkeypatch.setattr(handler, "make_client", {"s3": s3}.get)
        stores: list[FaultyStore] = []

        def faulty_s3(client: Any, bucket: str, *, expected_bucket_owner: str | None = None) -> FaultyStore:
            store = S3Store(client, bucket, expected_bucket_owner=expected_bucket_owner)
            stores.append(FaultyStore.with_fault_rate(store, 0.10, seed=len(stores)))
            return stores[-1]

        monkeypatch.setattr(handler, "open_s3_store", faulty_s3)
        window = Workload(items=40, seed=8).window(200)
        # WHEN Lambda delivers 200 changes in batches of 25, with cold starts on retries
        delivery = ShardDelivery(HandlerFunction, batch_size=25, max_attempts=50, cold_start_rate=0.3, seed=8)
        with quiet_capture_logs():
            delivery.deliver(window.records)
        handler.reset_runtime()
        # THEN the bucket holds every change in order
        assert check_versions(S3Store(s3, "backups"), window, NAMER) == []
    assert delivery.stats.retries > 0 and sum(store.injected for store in stores) > 10


def model_state_at(window: Any, at: float) -> dict[str, dict[str, Any]]:
    """The model's table at ``at``: per item, the newest change with event time <= at."""
    state = {}
    for identity, changes in window.changes.items():
        before = [change for change in changes if change.event_time <= at]
        if before and before[-1].image is not None:
            state[identity] = before[-1].image
    return state


def test_restore_under_s3_faults_and_thirty_percent_throttling_equals_the_model(tmp_path: Any) -> None:
    from ddb_backup.lab.faults import THROTTLE, UNPROCESSED, FaultyDynamoDB
    from ddb_backup.restore.execute import RestoreOptions, restore
    from ddb_backup.store.retry import RetryingStore
    from fake_dynamodb import FakeDynamoDB

    # GIVEN 1,500 changes to 150 items captured under 10% S3 faults with Lambda's retries
    window = Workload(items=150, seed=4).window(1500)
    written_at = datetime.fromtimestamp(START_TIME + 600, tz=UTC)  # S3's clock: 10 minutes after the changes
    inner = MemoryStore(clock=lambda: written_at)
    deliver(FaultyStore.with_fault_rate(inner, 0.10, seed=4), window.records, cold_start_rate=0.3, seed=4)
    fake = FakeDynamoDB()
    fake.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    # WHEN restores to several moments read through 10% S3 faults and write through 30% throttling
    times = sorted({change.event_time for changes in window.changes.values() for change in changes})
    reads = RetryingStore(FaultyStore.with_fault_rate(inner, 0.10, seed=5), sleep=lambda _: None, attempts=12)
    writes = FaultyDynamoDB(fake, throttle_rate=0.15, unprocessed_rate=0.15, seed=5)
    for number, at in enumerate([times[0] - 1, times[len(times) // 3], times[len(times) // 2] + 0.5, times[-1]]):
        target = f"restored-{number}"
        options = RestoreOptions(
            bucket="b", source=TABLE, target=target, at=at, checkpoint=tmp_path / f"{number}.json", batch_size=5
        )
        restore(options, reads, writes, now=lambda: times[-1] + 60)
        # THEN each equals the model's table at that moment
        restored = {k.key_json({"pk": item["pk"], "sk": item["sk"]}): item for item in fake.dump(target).values()}
        expected = {k.key_json(window.keys[identity]): image for identity, image in model_state_at(window, at).items()}
        assert restored == expected, f"restore at {at}"
    assert writes.dice.counts[THROTTLE] > 0 and writes.dice.counts[UNPROCESSED] > 0
