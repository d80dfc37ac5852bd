"""The fault injectors: the faults they inject look like AWS's, at the rates asked, the same every run."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.model import ServiceModel
from botocore.stub import Stubber
from botocore.validate import ParamValidator
from moto import mock_aws

from ddb_backup.lab import faults as f
from ddb_backup.store import StoreError
from ddb_backup.store.memory import MemoryStore

TABLE = "items"


def run_puts(store: f.FaultyStore, keys: int, tries: int) -> list[tuple[str, str]]:
    """Put ``tries`` times to each of ``keys`` keys; what each call did, in call order per key."""
    outcomes = []
    for n in range(keys):
        for _ in range(tries):
            try:
                store.put(f"k{n}", b"x", {})
                outcomes.append((f"k{n}", "ok"))
            except f.InjectedFault as err:
                outcomes.append((f"k{n}", err.kind))
    return outcomes


class TestFaultyStore:
    def test_a_store_without_rates_passes_everything_through(self) -> None:
        inner = MemoryStore()
        store = f.FaultyStore(inner, seed=1)
        store.put("t/a", b"1", {"event-name": "INSERT"})
        store.delete("t/a")
        assert [row.is_delete_marker for row in store.list_versions("t/")] == [True, False]
        assert store.versioning_enabled() and store.injected == 0

    def test_faults_come_at_the_rates_asked_and_are_counted(self) -> None:
        store = f.FaultyStore.with_fault_rate(MemoryStore(), 0.10, seed=7)
        outcomes = run_puts(store, keys=2000, tries=1)
        failed = sum(1 for _, what in outcomes if what != "ok")
        assert 150 <= failed <= 250  # 10% of 2000, binomial sd ~13
        assert store.injected == failed
        assert set(store.counts) == set(f.STORE_FAULTS)
        assert all(20 <= count <= 60 for count in store.counts.values())  # 2% each: 40, sd ~6

    def test_the_same_seed_gives_the_same_faults_whatever_the_thread_interleaving(self) -> None:
        def run(workers: int) -> list[tuple[str, str]]:
            store = f.FaultyStore(MemoryStore(), slow_down=0.2, lost_response=0.1, seed=3)
            with ThreadPoolExecutor(workers) as pool:
                chunks = pool.map(lambda n: run_puts_one(store, f"k{n}", 5), range(200))
            return [outcome for chunk in chunks for outcome in chunk]

        assert run(1) == run(8)
        other = f.FaultyStore(MemoryStore(), slow_down=0.2, lost_response=0.1, seed=4)
        assert run(1) != [o for n in range(200) for o in run_puts_one(other, f"k{n}", 5)]

    def test_a_retried_request_gets_a_fresh_chance(self) -> None:
        store = f.FaultyStore(MemoryStore(), internal_error=0.5, seed=11)
        results = [outcome for _, outcome in run_puts(store, keys=1, tries=40)]
        assert "ok" in results and "internal_error" in results

    @pytest.mark.parametrize(
        ("kind", "text"),
        [
            ("internal_error", "InternalError"),
            ("slow_down", "SlowDown"),
            ("timeout", "Read timeout"),
            ("connection_reset", "Connection was closed"),
        ],
    )
    def test_a_failed_write_is_a_store_error_and_writes_nothing(self, kind: str, text: str) -> None:
        inner = MemoryStore()
        store = f.FaultyStore(inner, **{kind: 1.0})
        with pytest.raises(StoreError, match=text) as caught:
            store.put("t/a", b"x", {})
        assert isinstance(caught.value, f.InjectedFault) and caught.value.kind == kind
        with pytest.raises(StoreError):
            store.delete("t/a")
        assert list(inner.list_versions("")) == [] and store.counts[kind] == 2

    def test_a_lost_response_fails_a_write_that_did_happen(self) -> None:
        inner = MemoryStore()
        store = f.FaultyStore(inner, lost_response=1.0)
        with pytest.raises(StoreError, match="Read timeout"):
            store.put("t/a", b"x", {"event-id": "e1"})
        with pytest.raises(StoreError):
            store.delete("t/a")
        rows = list(inner.list_versions("t/"))
        assert [row.is_delete_marker for row in rows] == [True, False]
        assert store.counts == {"lost_response": 2}

    def test_reads_fail_too_but_never_with_a_lost_response(self) -> None:
        inner = MemoryStore()
        inner.put("t/a", b"x", {})
        store = f.FaultyStore(inner, lost_response=1.0)
        assert store.get("t/a").body == b"x" and store.head("t/a").size == 1
        failing = f.FaultyStore(inner, timeout=1.0)
        for read in (lambda: failing.get("t/a"), lambda: failing.head("t/a"), failing.versioning_enabled):
            with pytest.raises(StoreError, match="timeout"):
                read()

    def test_a_listing_can_fail_between_pages(self) -> None:
        inner = MemoryStore()
        for n in range(10):
            inner.put(f"t/{n}", b"x", {})
        store = f.FaultyStore(inner, slow_down=0.3, seed=2, page_size=3)
        failed_after = []
        for _ in range(30):  # each listing gets fresh chances, page by page
            seen = 0
            try:
                for _row in store.list_versions("t/"):
                    seen += 1
            except StoreError as err:
                assert "SlowDown" in str(err)
                failed_after.append(seen)
        assert 0 in failed_after  # before the first page
        assert any(count in (3, 6, 9) for count in failed_after)  # after a page
        assert set(failed_after) <= {0, 3, 6, 9}

    def test_rates_are_checked(self) -> None:
        with pytest.raises(ValueError, match="more than 1"):
            f.FaultyStore(MemoryStore(), timeout=0.6, slow_down=0.6)
        with pytest.raises(ValueError, match="between 0 and 1"):
            f.FaultyStore(MemoryStore(), timeout=-0.1)


def run_puts_one(store: f.FaultyStore, key: str, tries: int) -> list[tuple[str, str]]:
    outcomes = []
    for _ in range(tries):
        try:
            store.put(key, b"x", {})
            outcomes.append((key, "ok"))
        except f.InjectedFault as err:
            outcomes.append((key, err.kind))
    return outcomes


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def puts(*ids: str) -> dict[str, list[dict[str, Any]]]:
    return {TABLE: [{"PutRequest": {"Item": {"id": {"S": i}, "v": {"N": "1"}}}} for i in ids]}


def stored_ids(client: Any) -> set[str]:
    return {item["id"]["S"] for item in client.scan(TableName=TABLE)["Items"]}


def aws_throttle(code: str) -> ClientError:
    """What boto3 itself raises for a throttled BatchWriteItem (through botocore's Stubber)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("batch_write_item", service_error_code=code, http_status_code=400)
        try:
            client.batch_write_item(RequestItems=puts("a"))
        except ClientError as err:
            return err
    raise AssertionError("the stub did not raise")


def request_map_is_valid(client: Any, request_items: Any) -> bool:
    """``UnprocessedItems`` has the shape of ``RequestItems``: botocore's own validator says whether it is."""
    model: ServiceModel = client.meta.service_model
    shape = model.operation_model("BatchWriteItem").input_shape
    report = ParamValidator().validate({"RequestItems": request_items}, shape)
    return not report.has_errors()


class AcceptingClient:
    """A stand-in client that accepts every write (moto is too slow for counting rates)."""

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        return {"UnprocessedItems": {}, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return {"ResponseMetadata": {"HTTPStatusCode": 200}}


class TestFaultyDynamoDB:
    @pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
    def test_a_throttled_batch_raises_what_boto3_raises_and_writes_nothing(self, dynamodb: Any, code: str) -> None:
        client = f.FaultyDynamoDB(dynamodb, throttle_rate=1.0, throttle_code=code)
        with pytest.raises(ClientError) as caught:
            client.batch_write_item(RequestItems=puts("a", "b"))
        real = aws_throttle(code)
        assert type(caught.value) is type(real)
        assert isinstance(caught.value, getattr(dynamodb.exceptions, code))
        assert caught.value.response["Error"]["Code"] == code
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert caught.value.operation_name == "BatchWriteItem"
        assert str(caught.value).startswith(f"An error occurred ({code}) when calling the BatchWriteItem operation")
        assert stored_ids(dynamodb) == set() and client.counts == {"throttle": 1}

    def test_a_partial_batch_writes_some_and_returns_the_rest_in_aws_shape(self, dynamodb: Any) -> None:
        client = f.FaultyDynamoDB(dynamodb, unprocessed_rate=1.0, seed=5)
        ids = [f"i{n}" for n in range(25)]
        answer = client.batch_write_item(RequestItems=puts(*ids))
        unprocessed = answer["UnprocessedItems"]
        assert list(unprocessed) == [TABLE] and request_map_is_valid(dynamodb, unprocessed)
        left = {request["PutRequest"]["Item"]["id"]["S"] for request in unprocessed[TABLE]}
        assert 1 <= len(left) <= 24
        assert stored_ids(dynamodb) == set(ids) - left
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200

        # WHEN the caller retries what came back THEN everything is written.
        again = dynamodb.batch_write_item(RequestItems=unprocessed)
        assert again["UnprocessedItems"] == {} and stored_ids(dynamodb) == set(ids)

    def test_deletes_and_several_tables_keep_their_request_shape(self, dynamodb: Any) -> None:
        dynamodb.create_table(
            TableName="other",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName=TABLE, Item={"id": {"S": "gone"}})
        client = f.FaultyDynamoDB(dynamodb, unprocessed_rate=1.0, seed=9)
        request = {
            TABLE: [{"DeleteRequest": {"Key": {"id": {"S": "gone"}}}}, *puts("x", "y")[TABLE]],
            "other": [{"PutRequest": {"Item": {"id": {"S": "z"}}}}],
        }
        answer = client.batch_write_item(RequestItems=request)
        assert request_map_is_valid(dynamodb, answer["UnprocessedItems"])
        left = [r for batch in answer["UnprocessedItems"].values() for r in batch]
        sent = [r for batch in request.values() for r in batch]
        assert 1 <= len(left) < len(sent) and all(r in sent for r in left)
        assert all(batch for batch in answer["UnprocessedItems"].values())  # no empty table lists

    def test_a_batch_of_one_cannot_be_split_so_it_is_throttled(self, dynamodb: Any) -> None:
        client = f.FaultyDynamoDB(dynamodb, unprocessed_rate=1.0)
        with pytest.raises(dynamodb.exceptions.ProvisionedThroughputExceededException):
            client.batch_write_item(RequestItems=puts("a"))
        assert client.counts == {"throttle": 1}

    def test_single_writes_are_throttled_and_everything_else_is_the_client(self, dynamodb: Any) -> None:
        client = f.FaultyDynamoDB(dynamodb, throttle_rate=1.0, unprocessed_rate=0.0)
        with pytest.raises(dynamodb.exceptions.ProvisionedThroughputExceededException):
            client.put_item(TableName=TABLE, Item={"id": {"S": "a"}})
        with pytest.raises(ClientError, match="DeleteItem"):
            client.delete_item(TableName=TABLE, Key={"id": {"S": "a"}})
        assert client.describe_table(TableName=TABLE)["Table"]["TableName"] == TABLE
        assert client.meta.service_model.service_name == "dynamodb"
        assert stored_ids(dynamodb) == set() and client.injected == 2

    def test_rates_seeds_and_retries(self) -> None:
        def outcomes(seed: int) -> list[str]:
            client = f.FaultyDynamoDB(AcceptingClient(), throttle_rate=0.2, unprocessed_rate=0.2, seed=seed)
            seen = []
            for n in range(300):
                try:
                    answer = client.batch_write_item(RequestItems=puts(f"a{n}", f"b{n}"))
                    seen.append("partial" if answer["UnprocessedItems"] else "ok")
                except ClientError:
                    seen.append("throttle")
            return seen

        first = outcomes(1)
        assert first == outcomes(1) and first != outcomes(2)
        assert 40 <= first.count("throttle") <= 80 and 40 <= first.count("partial") <= 80
        # The same request again gets a fresh chance: it is not throttled forever.
        client = f.FaultyDynamoDB(AcceptingClient(), throttle_rate=0.5, seed=1)
        results = []
        for _ in range(30):
            try:
                client.put_item(TableName=TABLE, Item={"id": {"S": "same"}})
                results.append("ok")
            except ClientError:
                results.append("throttle")
        assert "ok" in results and "throttle" in results
