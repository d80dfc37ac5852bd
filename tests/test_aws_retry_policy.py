"""One retry policy for S3 and DynamoDB (issue 14.5): a note once retries drag on, and an unreachable
endpoint is not retried again on top of botocore's attempts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from ddb_backup.aws import clients as aws
from ddb_backup.store import StoreError
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.retry import RetryingStore


@pytest.fixture
def notes() -> Iterator[list[str]]:
    heard: list[str] = []
    aws.notify = heard.append
    yield heard
    aws.notify = None


def test_a_request_retrying_for_a_while_is_noted_once(notes: list[str]) -> None:
    hook = aws._on_retry("s3")
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    fresh: dict[str, Any] = {"context": {}}
    hook(attempts=1, caught_exception=unreachable, request_dict=fresh)
    assert notes == []  # the first failure of a request is not news
    old: dict[str, Any] = {"context": {"ddb_backup_started": time.monotonic() - aws.NOTICE_AFTER_SECONDS - 1}}
    hook(attempts=3, caught_exception=unreachable, request_dict=old)
    hook(attempts=4, caught_exception=unreachable, request_dict=old)
    assert len(notes) == 1 and notes[0].startswith("s3: still trying after 3 attempts (Could not connect")


def test_every_client_carries_the_hook(notes: list[str]) -> None:
    old: dict[str, Any] = {"context": {"ddb_backup_started": time.monotonic() - aws.NOTICE_AFTER_SECONDS - 1}}
    for service, operation in (("s3", "ListBuckets"), ("dynamodb", "ListTables"), ("dynamodbstreams", "ListStreams")):
        client = aws.make_client(service, region="us-east-1")
        model = client.meta.service_model
        event = f"needs-retry.{model.service_id.hyphenize()}.{operation}"
        client.meta.events.emit(
            event,
            attempts=2,
            caught_exception=EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
            request_dict=old,
            response=None,
            operation=model.operation_model(operation),
        )
        old["context"].pop("ddb_backup_noticed")
    assert [note.split(":")[0] for note in notes] == ["s3", "dynamodb", "dynamodbstreams"]


class Unreachable(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def get(self, key: str, version_id: str | None = None) -> Any:
        self.calls += 1
        raise StoreError("GetObject: unreachable") from EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def test_the_store_does_not_retry_an_unreachable_endpoint_again() -> None:
    inner = Unreachable()
    with pytest.raises(StoreError):
        RetryingStore(inner, sleep=lambda _: None).get("k")
    assert inner.calls == 1


def test_every_client_makes_the_documented_number_of_attempts_in_all() -> None:
    """botocore reads ``max_attempts`` as retries after the first request (9 in all for 8): the policy
    counts attempts in all, as the README and the native S3 client (8 = 1 + its 7 retries) do."""
    from ddb_backup.store.native import MAX_RETRIES

    for service in ("s3", "dynamodb", "dynamodbstreams"):
        client = aws.make_client(service, endpoint_url="http://127.0.0.1:9", region="us-east-1")
        assert client.meta.config.retries["total_max_attempts"] == aws.DEFAULT_MAX_ATTEMPTS == MAX_RETRIES + 1 == 8


def test_the_last_attempt_is_not_called_still_trying(notes: list[str]) -> None:
    """The unreachable endpoint said "still trying after 8 attempts" just before giving up: 8 was all."""
    hook = aws._on_retry("s3", max_attempts=8)
    old: dict[str, Any] = {"context": {"ddb_backup_started": time.monotonic() - aws.NOTICE_AFTER_SECONDS - 1}}
    hook(attempts=8, caught_exception=EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), request_dict=old)
    assert notes == []
    hook(attempts=7, caught_exception=EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), request_dict=old)
    assert len(notes) == 1
