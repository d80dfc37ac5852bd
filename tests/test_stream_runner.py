"""The stream runner against a fake Streams client: lineage, checkpoints, partial batches, expired
iterators, trimmed data, stopping. (moto never splits or closes a shard; see fake_streams.py.)"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ddb_backup.capture.batch_response import lowest_failure
from ddb_backup.capture.records import StreamRecord
from ddb_backup.capture.stream_checkpoint import (
    Checkpoint,
    FileCheckpoints,
    S3Checkpoints,
    default_location,
    open_checkpoints,
)
from ddb_backup.capture.stream_runner import RunnerOptions, StreamRunner
from ddb_backup.capture.stream_shards import list_shards
from ddb_backup.errors import BackupError, UserError
from fake_streams import ARN, FakeStreams

FAST = RunnerOptions(batch_size=2, until_idle=True, retry_base=0.0, poll_interval=0.0)


class MemoryCheckpoints:
    location = "memory"

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self.saved: Checkpoint | None = checkpoint
        self.saves = 0

    def load(self) -> Checkpoint | None:
        return None if self.saved is None else Checkpoint.from_json(self.saved.to_json(), "memory")

    def save(self, checkpoint: Checkpoint) -> None:
        self.saved = Checkpoint.from_json(checkpoint.to_json(), "memory")
        self.saves += 1


class Recorder:
    """A handler that remembers every batch it got and can fail chosen sequence numbers."""

    def __init__(self, fail: Mapping[str, int] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail = dict(fail or {})  # sequence number -> how many deliveries to fail
        self.acknowledged: list[str] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        records = [StreamRecord(raw) for raw in event["Records"]]
        assert all(record.table_name == "orders" for record in records)  # eventSourceARN, as Lambda adds it
        sequences = [record.sequence_number for record in records]
        self.batches.append(sequences)
        failed = [seq for seq in sequences if self.fail.get(seq, 0) > 0]
        for seq in failed:
            self.fail[seq] -= 1
        lowest = min(failed, key=int) if failed else None
        self.acknowledged += [seq for seq in sequences if lowest is None or int(seq) < int(lowest)]
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}

    @property
    def delivered(self) -> list[str]:
        return [seq for batch in self.batches for seq in batch]


def runner(
    streams: FakeStreams, handler: Any, checkpoints: Any, options: RunnerOptions = FAST, **kw: Any
) -> StreamRunner:
    return StreamRunner(streams, ARN, handler, checkpoints, options, notify=lambda message: None, **kw)


def split_stream() -> tuple[FakeStreams, dict[str, list[str]]]:
    """P (closed, 5 records) split into C1 (closed, 3 records, then split into G) and C2 (open, 2 records)."""
    streams = FakeStreams(page_size=2)
    streams.add_shard("P", first_sequence=100)
    written: dict[str, list[str]] = {"P": [], "C1": [], "C2": [], "G": []}
    written["P"] = [streams.write("P", f"p{n}") for n in range(5)]
    streams.split("P", "C1", "C2", first_sequence=200)
    written["C1"] = [streams.write("C1", f"c1-{n}") for n in range(3)]
    written["C2"] = [streams.write("C2", f"c2-{n}") for n in range(2)]
    streams.split("C1", "G", first_sequence=400)
    written["G"] = [streams.write("G", f"g{n}") for n in range(2)]
    streams.listing_order = ["G", "C2", "C1", "P"]  # children listed before parents
    return streams, written


def test_a_child_shard_is_read_only_after_its_parent_is_finished() -> None:
    # GIVEN a stream whose shard split twice, listed children first over several DescribeStream pages
    streams, written = split_stream()
    handler, checkpoints = Recorder(), MemoryCheckpoints()
    # WHEN the runner reads it until idle
    summary = runner(streams, handler, checkpoints).run()
    # THEN each shard's records come after all of its parent's, every record exactly once
    delivered = handler.delivered
    assert sorted(delivered, key=int) == sorted((s for seqs in written.values() for s in seqs), key=int)
    assert len(delivered) == len(set(delivered))
    position = {seq: index for index, seq in enumerate(delivered)}
    for parent, child in (("P", "C1"), ("P", "C2"), ("C1", "G")):
        assert max(position[s] for s in written[parent]) < min(position[s] for s in written[child])
    for shard in written.values():
        assert [position[s] for s in shard] == sorted(position[s] for s in shard)  # in order within a shard
    assert summary.stopped == "idle"
    assert summary.shards_finished == 2
    assert checkpoints.saved is not None
    assert checkpoints.saved.finished == {"P", "C1"}
    assert checkpoints.saved.positions == {shard: seqs[-1] for shard, seqs in written.items()}
    assert any("ExclusiveStartShardId" in args for name, args in streams.calls if name == "DescribeStream")


def test_describe_stream_pages_are_followed_with_the_documented_parameters() -> None:
    # botocore's Stubber checks every request against the service model
    client = boto3.client("dynamodbstreams", region_name="us-east-1")
    a, b = "shardId-00000001541626099285-aaaaaaaa", "shardId-00000001541626099285-bbbbbbbb"
    with Stubber(client) as stub:
        shard = {"SequenceNumberRange": {"StartingSequenceNumber": "1" * 21}}
        stub.add_response(
            "describe_stream",
            {"StreamDescription": {"Shards": [{**shard, "ShardId": a}], "LastEvaluatedShardId": a}},
            {"StreamArn": ARN},
        )
        stub.add_response(
            "describe_stream",
            {"StreamDescription": {"Shards": [{**shard, "ShardId": b, "ParentShardId": a}]}},
            {"StreamArn": ARN, "ExclusiveStartShardId": a},
        )
        shards = list_shards(client, ARN)
        stub.assert_no_pending_responses()
    assert [(s.shard_id, s.parent_id) for s in shards] == [(a, None), (b, a)]


def test_a_restart_resumes_after_the_last_acknowledged_batch() -> None:
    # GIVEN a runner stopped (as by Ctrl-C) while it was handling its third batch
    streams, written = split_stream()
    checkpoints, stop = MemoryCheckpoints(), threading.Event()
    first = Recorder()

    def stopping(event: dict[str, Any]) -> dict[str, Any]:
        answer = first(event)
        if len(first.batches) == 3:
            stop.set()
        return answer

    summary = runner(streams, stopping, checkpoints, stop=stop).run()
    assert summary.stopped == "stopped"
    assert len(first.batches) == 3  # the batch in hand was finished and checkpointed
    # WHEN a new runner starts from the same checkpoint, after more records arrived
    written["C2"].append(streams.write("C2", "late"))
    second = Recorder()
    runner(streams, second, checkpoints).run()
    # THEN together they delivered every record exactly once
    everything = sorted((s for seqs in written.values() for s in seqs), key=int)
    assert sorted(first.delivered + second.delivered, key=int) == everything
    assert not set(first.delivered) & set(second.delivered)


def test_a_partial_batch_response_checkpoints_before_the_failure_and_rereads_from_it() -> None:
    # GIVEN one shard of 6 records, and a handler that fails record 103 twice
    streams = FakeStreams()
    streams.add_shard("S", first_sequence=100)
    sequences = [streams.write("S", f"k{n}") for n in range(6)]
    handler, checkpoints = Recorder(fail={"103": 2}), MemoryCheckpoints()
    saved_positions: list[str] = []
    save = checkpoints.save
    checkpoints.save = lambda cp: (saved_positions.append(cp.positions.get("S", "")), save(cp))[1]  # type: ignore[method-assign]
    # WHEN the runner reads it in batches of 3
    summary = runner(streams, handler, checkpoints, RunnerOptions(batch_size=3, until_idle=True, retry_base=0)).run()
    # THEN 100-102 are acknowledged, 103 is redelivered (batches start at it) until it succeeds, nothing is lost
    assert handler.batches == [
        ["100", "101", "102"],
        ["103", "104", "105"],
        ["103", "104", "105"],
        ["103", "104", "105"],
    ]
    assert handler.acknowledged == sequences
    assert saved_positions == ["102", "105"]
    assert summary.failed_batches == 2
    assert summary.records == 6


def test_a_batch_that_keeps_failing_stops_the_runner_and_keeps_the_checkpoint() -> None:
    streams = FakeStreams()
    streams.add_shard("S", first_sequence=100)
    for n in range(4):
        streams.write("S", f"k{n}")
    handler, checkpoints = Recorder(fail={"102": 99}), MemoryCheckpoints()
    with pytest.raises(BackupError, match="from record 102 failed 3 times"):
        runner(
            streams,
            handler,
            checkpoints,
            RunnerOptions(batch_size=10, until_idle=True, max_batch_attempts=3, retry_base=0),
        ).run()
    assert checkpoints.saved is not None
    assert checkpoints.saved.positions == {"S": "101"}


def test_a_handler_that_raises_fails_the_whole_batch_like_lambda() -> None:
    streams = FakeStreams()
    streams.add_shard("S", first_sequence=100)
    streams.write("S", "k")
    calls = []

    def broken(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(event)
        raise RuntimeError("boom")

    with pytest.raises(BackupError, match="RuntimeError: boom"):
        runner(
            streams, broken, MemoryCheckpoints(), RunnerOptions(until_idle=True, max_batch_attempts=2, retry_base=0)
        ).run()
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("response", "lowest"),
    [
        ({"batchItemFailures": []}, None),
        ({}, None),
        (None, None),
        ({"batchItemFailures": [{"itemIdentifier": "12"}, {"itemIdentifier": "11"}]}, "11"),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, "10"),
        ({"batchItemFailures": [{"itemIdentifier": "99"}]}, "10"),
        ("not a response", "10"),
    ],
)
def test_the_partial_batch_response_is_read_as_lambda_reads_it(response: Any, lowest: str | None) -> None:
    records = [{"dynamodb": {"SequenceNumber": str(n)}} for n in (10, 11, 12)]
    assert lowest_failure(response, records) == lowest


def test_an_expired_iterator_is_replaced_after_the_checkpoint() -> None:
    # GIVEN a shard whose iterators expire now and then
    streams = FakeStreams()
    streams.add_shard("S", first_sequence=100)
    sequences = [streams.write("S", f"k{n}") for n in range(5)]
    handler = Recorder()
    original = streams.get_records
    calls = [0]

    def flaky(**args: Any) -> dict[str, Any]:
        calls[0] += 1
        if calls[0] in (2, 4):
            streams.expire_next = 1
        return original(**args)

    streams.get_records = flaky  # type: ignore[method-assign]
    # WHEN the runner reads it
    runner(streams, handler, MemoryCheckpoints()).run()
    # THEN it got new iterators after its checkpoint and delivered each record once
    assert handler.delivered == sequences
    renewed = [args for name, args in streams.calls if name == "GetShardIterator"]
    assert [args["ShardIteratorType"] for args in renewed] == [
        "TRIM_HORIZON",
        "AFTER_SEQUENCE_NUMBER",
        "AFTER_SEQUENCE_NUMBER",
    ]
    assert [args.get("SequenceNumber") for args in renewed[1:]] == ["101", "103"]


def test_records_trimmed_before_they_were_read_are_reported_as_a_gap() -> None:
    # GIVEN a checkpoint at 101, and a stream that has since trimmed everything before 104
    streams = FakeStreams()
    streams.add_shard("S", first_sequence=100)
    sequences = [streams.write("S", f"k{n}") for n in range(7)]
    streams.shards["S"].trimmed_before = 4
    checkpoints = MemoryCheckpoints(Checkpoint(ARN, {"S": "101"}))
    handler = Recorder()
    # WHEN the runner resumes
    summary = runner(streams, handler, checkpoints).run()
    # THEN it reports the lost range (after 101, before 104) and reads on from the oldest record left
    assert [(g.shard_id, g.after, g.before) for g in summary.gaps] == [("S", "101", "104")]
    assert "records after 101 before 104 were lost" in summary.gaps[0].describe()
    assert handler.delivered == sequences[4:]


def test_an_unfinished_shard_that_left_the_stream_is_a_gap_and_its_children_are_read() -> None:
    # GIVEN a checkpoint in shard OLD, which has since left the stream (its child is still there)
    streams = FakeStreams()
    streams.add_shard("NEW", parent="OLD", first_sequence=500)
    sequences = [streams.write("NEW", "k")]
    checkpoints = MemoryCheckpoints(Checkpoint(ARN, {"OLD": "120"}))
    handler = Recorder()
    summary = runner(streams, handler, checkpoints).run()
    assert [(g.shard_id, g.after, g.before) for g in summary.gaps] == [("OLD", "120", None)]
    assert handler.delivered == sequences
    assert checkpoints.saved is not None
    assert "OLD" not in checkpoints.saved.positions


def test_a_checkpoint_of_another_stream_is_not_applied() -> None:
    streams = FakeStreams()
    streams.add_shard("S", first_sequence=100)
    sequences = [streams.write("S", "k")]
    handler = Recorder()
    runner(streams, handler, MemoryCheckpoints(Checkpoint(ARN + "-old", {"S": "100"}))).run()
    assert handler.delivered == sequences


def test_without_until_idle_it_polls_until_stopped() -> None:
    # GIVEN an open shard that gets a record while the runner waits
    streams = FakeStreams()
    streams.add_shard("S", first_sequence=100)
    stop = threading.Event()
    handler = Recorder()
    waits = []

    class Waiter(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            if len(waits) == 2:
                streams.write("S", "late")
            if len(waits) == 5:
                stop.set()
            return stop.is_set()

        def is_set(self) -> bool:
            return stop.is_set()

    options = RunnerOptions(until_idle=False, poll_interval=1.5)
    summary = runner(streams, handler, MemoryCheckpoints(), options, stop=Waiter()).run()
    assert summary.stopped == "stopped"
    assert handler.delivered == ["100"]
    assert set(waits) == {1.5}


# -- checkpoint stores ------------------------------------------------------------------------------


def test_a_file_checkpoint_is_replaced_whole(tmp_path: Path) -> None:
    store = FileCheckpoints(tmp_path / "sub" / "cp.json")
    assert store.load() is None
    store.save(Checkpoint(ARN, {"a": "1"}, {"b"}))
    store.save(Checkpoint(ARN, {"a": "2"}, {"b"}))
    loaded = store.load()
    assert loaded is not None
    assert (loaded.positions, loaded.finished) == ({"a": "2"}, {"b"})
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cp.json"]  # no temporary files left


def test_a_damaged_checkpoint_is_a_user_error_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match="delete it"):
        FileCheckpoints(path).load()


def test_an_s3_checkpoint_round_trips() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bk-checkpoints")
        store = open_checkpoints(default_location("bk-checkpoints", "/pre/", "orders"), lambda: s3)
        assert isinstance(store, S3Checkpoints)
        assert store.location == "s3://bk-checkpoints/pre/~ddb-backup/checkpoints/orders.json"
        assert store.load() is None
        store.save(Checkpoint(ARN, {"a": "7"}))
        loaded = store.load()
        assert loaded is not None
        assert loaded.positions == {"a": "7"}
    with pytest.raises(UserError):
        open_checkpoints("s3://only-bucket", lambda: None)
