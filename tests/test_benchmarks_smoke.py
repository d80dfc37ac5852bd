"""The benchmarks' fakes behave as the real thing where our code can tell, and every benchmark runs at
toy size (the figures themselves are ``make bench``'s business, never a test's)."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from benchmarks.boto_cpu import bench_boto3_cpu
from benchmarks.capture_bench import bench_capture, bench_capture_boto3, bench_capture_moto, stream_batch
from benchmarks.cold_start import bench_cold_start
from benchmarks.exact_cost import bench_exact_cost
from benchmarks.fakes import CountingStore, LatencyDynamoDB
from benchmarks.memory_bench import bench_memory
from benchmarks.report import Figure
from benchmarks.restore_bench import bench_restore
from benchmarks.synthetic import AFTER_24H, History, SyntheticStore
from ddb_backup.format.version_meta import VersionMeta
from ddb_backup.restore.plan import PointInTime, table_ranges
from ddb_backup.restore.state import iter_states
from ddb_backup.store import NoSuchVersion
from ddb_backup.store.memory import MemoryStore

HISTORY = History(items=300, versions=4)


def test_synthetic_listing_is_ordered_as_s3_lists_versions() -> None:
    # GIVEN a synthetic bucket
    store = SyntheticStore(HISTORY)
    # WHEN it is listed
    rows = list(store.list_versions("bench/"))
    # THEN keys ascend (as UTF-8 bytes), each key's versions come newest first, the first marked latest
    keys = [row.key for row in rows[:: HISTORY.versions]]
    assert keys == sorted(set(keys), key=lambda key: key.encode()) and len(keys) == HISTORY.items
    for index in range(0, len(rows), HISTORY.versions):
        versions = rows[index : index + HISTORY.versions]
        times = [row.last_modified for row in versions]
        assert times == sorted(times, reverse=True)
        assert [row.is_latest for row in versions] == [True] + [False] * (HISTORY.versions - 1)


def test_synthetic_listing_resumes_after_a_key_marker_and_keeps_to_its_prefix() -> None:
    store = SyntheticStore(HISTORY)
    marker = HISTORY.name(41)
    after = list(store.list_versions(HISTORY.prefix, key_marker=marker))
    assert after[0].key == HISTORY.name(42) and len(after) == (HISTORY.items - 42) * HISTORY.versions
    assert list(store.list_versions("bench/other/")) == []
    hex_prefix = HISTORY.name(150)[: len(HISTORY.prefix) + 2]
    assert {row.key[: len(hex_prefix)] for row in store.list_versions(hex_prefix)} == {hex_prefix}


def test_synthetic_head_answers_the_metadata_capture_would_have_written() -> None:
    store = SyntheticStore(HISTORY)
    row = next(iter(store.list_versions(HISTORY.name(7))))
    meta = VersionMeta.from_s3(store.head(row.key, row.version_id).metadata)
    assert meta is not None and meta.event_time == HISTORY.event_times(7)[-1]
    assert store.get(row.key, row.version_id).body.startswith(b'{"pk":{"S":"%s"}' % HISTORY.key_value(7).encode())
    assert row.key == HISTORY.prefix + HISTORY.key_value(7)  # the plain-text name every writer gives that key
    with pytest.raises(NoSuchVersion):
        store.head(HISTORY.name(7), "7.9")


def test_planner_over_the_synthetic_bucket_picks_each_items_newest_change_at_t() -> None:
    # GIVEN a history where some items changed in the 24 h after T
    store = SyntheticStore(HISTORY)
    # WHEN the state at T is planned
    states = [s for _, s in iter_states(store, table_ranges(store, "bench", "orders"), PointInTime(HISTORY.at)) if s]
    # THEN every item is at its newest change at or before T, with one read per item changed after T
    assert len(states) == HISTORY.items
    for state in states:
        item = HISTORY.item_of(state.object_key)
        newest = max(v for v, when in enumerate(HISTORY.event_times(item)) if when <= HISTORY.at)
        assert state.version is not None and state.version.version_id == f"{item}.{newest}"
        assert state.metadata_reads == (1 if HISTORY.kind(item) == AFTER_24H else 0)


def test_counting_store_sees_concurrent_requests() -> None:
    store = CountingStore(MemoryStore(latency=0.05))
    threads = [threading.Thread(target=store.put, args=(f"k{n}", b"x", {})) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.flight.total == 4 and store.flight.most >= 2 and store.flight.now == 0


def test_latency_dynamodb_keeps_puts_and_applies_deletes() -> None:
    client = LatencyDynamoDB(("pk",))
    item = {"pk": {"S": "a"}, "v": {"N": "1"}}
    client.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": item}}]})
    client.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"pk": {"S": "b"}}}}]})
    assert client.batch_write_item(RequestItems={"t": [{"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]}) == {
        "UnprocessedItems": {}
    }
    assert client.tables["t"] == {repr([{"S": "a"}]): item}


def test_latency_dynamodb_describes_creates_and_refuses_oversized_batches() -> None:
    client = LatencyDynamoDB(("pk",))
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.describe_table(TableName="t")
    client.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    assert client.describe_table(TableName="t")["Table"]["TableStatus"] == "ACTIVE"
    assert client.scan(TableName="t", Limit=1, Select="COUNT")["Count"] == 0
    puts = [{"PutRequest": {"Item": {"pk": {"S": str(n)}}}} for n in range(26)]
    with pytest.raises(ClientError, match="ValidationException"):
        client.batch_write_item(RequestItems={"t": puts})


def test_stream_batch_has_the_asked_shape() -> None:
    batch = stream_batch(40, 10)
    assert len(batch) == 40 and len({repr(r["dynamodb"]["Keys"]) for r in batch}) == 10
    assert [r["eventName"] for r in batch].count("REMOVE") == 1


def _ran(figures: list[Figure]) -> None:
    assert figures and all(figure.value >= 0 and figure.verdict in ("PASS", "MISS", "info") for figure in figures)
    assert all(figure.lines() for figure in figures)


def test_capture_benchmarks_run_at_toy_size() -> None:
    figures = bench_capture(latency=0.0, records=40, items=10)
    _ran(figures)
    assert figures[1].value <= 64  # requests in flight
    _ran(bench_capture_boto3(latency=0.0, records=8, items=2))


def test_planning_benchmarks_run_at_toy_size() -> None:
    exact = bench_exact_cost(items=400)
    _ran(exact)
    assert exact[0].verdict == "PASS"
    _ran(bench_memory(small_items=200, factor=2))
    _ran(bench_restore(items=50, subset=20, latency=0.0))


def test_cold_start_benchmark_runs_and_keeps_the_cli_out() -> None:
    _ran(bench_cold_start(runs=1))


@pytest.mark.e2e
def test_moto_benchmarks_run_at_toy_size() -> None:
    _ran(bench_capture_moto(records=8, items=2))
    _ran(bench_boto3_cpu(calls=3, moto_calls=2, records=8))


def test_http_benchmarks_run_at_toy_size() -> None:
    # the fake endpoint in its own process, real clients over HTTP; figures are make bench's business
    from benchmarks.http_bench import bench_capture_http, bench_listing_http, bench_restore_http

    capture = bench_capture_http(latency=0.0, records=40, items=10, rounds=1)
    listing = bench_listing_http(items=300, versions=4, latency=0.0, rounds=1)
    restore = bench_restore_http(
        items=120, versions=3, baseline_items=60, one_process_items=60, latency=0.0
    )  # checks the table itself
    assert [figure.unit for figure in capture + listing + restore] == ["records/s", "ms", "ms", "items/s"]
    assert all(figure.value > 0 and figure.baseline for figure in capture + listing + restore)


def test_the_fake_endpoint_lists_across_pages_and_answers_metadata_as_capture_wrote_it() -> None:
    from benchmarks.http_fake import fake_endpoint, stats
    from ddb_backup.aws.clients import make_client
    from ddb_backup.store.native import NativeS3Store
    from ddb_backup.store.s3 import S3Store

    history = History(items=450, versions=5)  # 2,250 versions: three pages, two ending inside a key
    with fake_endpoint(0.0, history) as url:
        client = make_client("s3", endpoint_url=url, region="us-east-1")
        rows = list(S3Store(client, "bench").list_versions(history.prefix))
        expected = list(SyntheticStore(history).list_versions(history.prefix))
        assert [(row.key, row.version_id, row.last_modified) for row in rows] == [
            (row.key, row.version_id, row.last_modified) for row in expected
        ]
        native = NativeS3Store(client, "bench")
        head = native.head(rows[7].key, rows[7].version_id)
        assert head.metadata == SyntheticStore(history).head(rows[7].key, rows[7].version_id).metadata
        assert (
            native.get(rows[7].key, rows[7].version_id).body
            == SyntheticStore(history).get(rows[7].key, rows[7].version_id).body
        )
        with pytest.raises(NoSuchVersion):
            native.get(history.prefix + "nothing")
        assert stats(url)["counts"]["ListObjectVersions"] == 3
