"""BatchWriter: batches of 25, retries of unprocessed and throttled writes, the rate, the time bound."""

from __future__ import annotations

import random
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ddb_backup.aws.ratelimit import TokenBucket
from ddb_backup.errors import BackupError
from ddb_backup.format import keys as k
from ddb_backup.restore.writer import BatchWriter, item_size, write_units
from fake_dynamodb import FakeDynamoDB

SCHEMA = k.KeySchema("pk")


class Clock:
    """A fake clock that sleeping moves forward."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def table() -> FakeDynamoDB:
    dynamodb = FakeDynamoDB()
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )
    return dynamodb


class Flaky:
    """Answers the first ``n`` BatchWriteItem calls with an error or with half of the items unprocessed."""

    def __init__(self, client: FakeDynamoDB, n: int, *, throttle: bool) -> None:
        self.client, self.n, self.throttle, self.sizes = client, n, throttle, []

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> Any:
        ((name, requests),) = RequestItems.items()
        self.sizes.append(len(requests))
        if self.n > 0:
            self.n -= 1
            if self.throttle:
                error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
                raise ClientError({"Error": error}, "BatchWriteItem")
            half = len(requests) // 2
            self.client.batch_write_item(RequestItems={name: requests[:half]})
            return {"UnprocessedItems": {name: requests[half:]}}
        return self.client.batch_write_item(RequestItems=RequestItems)


def writer(client: Any, clock: Clock, **kw: Any) -> BatchWriter:
    return BatchWriter(client, "t", SCHEMA, workers=2, sleep=clock.sleep, clock=clock, rng=random.Random(1), **kw)


@pytest.mark.parametrize("throttle", [False, True])
def test_unprocessed_and_throttled_items_are_retried_until_written(throttle: bool) -> None:
    dynamodb, clock = table(), Clock()
    flaky = Flaky(dynamodb, 3, throttle=throttle)
    done: list[int] = []
    out = writer(flaky, clock)
    for n in range(60):
        out.put({"pk": {"S": f"k{n}"}, "b": {"B": "AAE="}}, done=lambda n=n: done.append(n))
    out.close()
    assert len(dynamodb.items["t"]) == 60 and sorted(done) == list(range(60))
    assert max(flaky.sizes) == 25 and clock.slept > 0
    assert dynamodb.items["t"]['{"pk":{"S":"k0"}}']["b"] == {"B": b"\x00\x01"}  # base64 text -> bytes
    assert (out.stats.throttled > 0) == throttle and out.stats.retries > 0


def test_retrying_stops_after_the_time_bound_with_a_resume_hint() -> None:
    clock = Clock()
    out = writer(Flaky(table(), 10**6, throttle=True), clock, max_retry_seconds=60)
    out.put({"pk": {"S": "a"}})
    with pytest.raises(BackupError, match="--resume"):
        out.close()
    assert 60 <= clock.now < 60 + 11  # one backoff (at most 10 s) past the bound


def test_a_key_twice_in_a_batch_is_written_once_the_later_image_winning() -> None:
    dynamodb, clock = table(), Clock()
    out = writer(dynamodb, clock)
    out.put({"pk": {"S": "a"}, "v": {"N": "1"}})
    out.put({"pk": {"S": "a"}, "v": {"N": "2"}})
    out.close()
    assert dynamodb.items["t"] == {'{"pk":{"S":"a"}}': {"pk": {"S": "a"}, "v": {"N": "2"}}}


def test_the_rate_limiter_spends_write_units_at_the_given_rate() -> None:
    clock = Clock()
    limiter = TokenBucket(100.0, clock=clock, sleep=clock.sleep)
    for _ in range(30):
        limiter.wait()
        limiter.spend(25)  # 750 units: 100 at once, the rest at 100 per second (the last is paid after)
    assert 6.2 <= clock.now <= 6.3


def test_write_units_count_started_kilobytes() -> None:
    assert write_units({"pk": {"S": "a"}}) == 1
    item = {"pk": {"S": "ab"}, "n": {"N": "12345"}, "l": {"L": [{"BOOL": True}]}}
    assert item_size(item) == (2 + 2) + (1 + 3) + (1 + 3 + 1 + 1)  # names + values; a list adds 3 + 1 each
    assert write_units({"pk": {"S": "x" * 3000}}) == 3


def test_a_batch_refused_for_one_item_is_split_until_that_item_stands_alone() -> None:
    # GIVEN AWS's answers, as botocore's Stubber plays them: any batch holding item c is invalid
    client = boto3.client("dynamodb", region_name="us-east-1")
    stubber = Stubber(client)
    items = [{"pk": {"S": name}} for name in "abcd"]
    requests = [{"PutRequest": {"Item": item}} for item in items]
    reason = "One or more parameter values are not valid. A value specified for a secondary index key is not supported"

    def invalid(batch: list[dict[str, Any]]) -> None:
        stubber.add_client_error(
            "batch_write_item", "ValidationException", reason, 400, expected_params={"RequestItems": {"t": batch}}
        )

    def ok(batch: list[dict[str, Any]]) -> None:
        stubber.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {"t": batch}})

    invalid(requests)  # a b c d
    ok(requests[:2])  # a b
    invalid(requests[2:])  # c d
    invalid(requests[2:3])  # c: stands alone
    ok(requests[3:])  # d
    rejected: list[tuple[str, Any, str]] = []
    done: list[str] = []
    # WHEN the four are written in one batch
    with stubber:
        out = BatchWriter(client, "t", SCHEMA, workers=1, on_reject=lambda *args: rejected.append(args))
        for item in items:
            out.put(item, done=lambda name=item["pk"]["S"]: done.append(name))
        out.close()
        stubber.assert_no_pending_responses()
    # THEN c is handed over with AWS's reason, the others are written, every done callback ran once
    assert rejected == [("put", {"pk": {"S": "c"}}, reason)]
    assert (out.stats.puts, out.stats.rejected) == (3, 1) and sorted(done) == ["a", "b", "c", "d"]


def test_without_a_rejects_sink_a_refused_item_fails_the_write_with_the_reason() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("batch_write_item", "ValidationException", "Item size has exceeded the maximum", 400)
    with stubber:
        out = BatchWriter(client, "t", SCHEMA, workers=1)
        out.put({"pk": {"S": "a"}})
        with pytest.raises(BackupError, match="Item size has exceeded"):
            out.close()


def test_once_stopped_nothing_new_is_sent_and_no_done_callback_runs() -> None:
    dynamodb, clock = table(), Clock()
    stop = threading.Event()
    out = writer(dynamodb, clock, stop=stop)
    done: list[int] = []
    out.put({"pk": {"S": "a"}}, done=lambda: done.append(1))
    stop.set()
    out.put({"pk": {"S": "b"}}, done=lambda: done.append(2))
    out.close()
    assert dynamodb.batch_calls == 0 and done == [] and dynamodb.items["t"] == {}


def test_a_stop_ends_the_wait_for_write_capacity_at_once() -> None:
    limiter = TokenBucket(1.0)
    limiter.spend(3600)  # an hour in debt
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert limiter.wait(stop) is False  # returns when stopped, not after the hour


class OneFailsOthersSlow:
    """BatchWriteItem: the first call fails once four calls are in flight; the others answer after
    ``hold`` is set."""

    def __init__(self) -> None:
        self.hold, self.all_in, self.calls, self.answered = threading.Event(), threading.Event(), 0, 0
        self._lock = threading.Lock()

    def batch_write_item(self, **args: Any) -> Any:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
            if self.calls == 4:
                self.all_in.set()
        if first:
            self.all_in.wait(5)
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "crash"}}, "BatchWriteItem")
        self.hold.wait(5)
        with self._lock:
            self.answered += 1
        return {"UnprocessedItems": {}}


def test_abort_after_a_failure_returns_only_when_no_batch_is_still_being_sent() -> None:
    # GIVEN a writer with four batches in flight, the first of which fails
    client = OneFailsOthersSlow()
    out = BatchWriter(client, "t", SCHEMA, workers=4, batch_size=1, max_retry_seconds=0.0)
    for n in range(4):
        out.put({"pk": {"S": str(n)}})
    client.all_in.wait(5)
    # WHEN the run aborts on that failure while the others are still being answered
    threading.Timer(0.2, client.hold.set).start()
    with pytest.raises(BackupError):
        for _ in range(500):  # the next item meets the first batch's failure (as ItemFlow's puts do)
            out.put({"pk": {"S": "next"}})
            threading.Event().wait(0.01)
    out.abort()
    # THEN nothing is still being written when abort returns (the caller may read the table at once)
    assert client.answered == 3
