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


class Request:
    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context


def test_a_request_retrying_for_a_while_is_noted_once(notes: list[str]) -> None:
    failed, starts = aws._on_retry("s3"), aws._on_attempt("s3")
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    fresh: dict[str, Any] = {"context": {"retries": {"attempt": 2}}}
    failed(attempts=1, caught_exception=unreachable, request_dict=fresh)
    starts(request=Request(fresh["context"]))
    assert notes == []  # the first retry of a request is not news
    old: dict[str, Any] = {"context": {"ddb_backup_started": time.monotonic() - aws.NOTICE_AFTER_SECONDS - 1}}
    for attempt in (3, 4):
        failed(attempts=attempt - 1, caught_exception=unreachable, request_dict=old)
        old["context"]["retries"] = {"attempt": attempt}
        starts(request=Request(old["context"]))
    assert len(notes) == 1 and notes[0].startswith("s3: retrying: attempt 3 of at most 8 (the last one: Could not")


def test_a_failed_answer_is_named_and_a_success_is_no_failure() -> None:
    assert aws._failure(None, (None, {"Error": {"Code": "SlowDown"}})) == "SlowDown"
    assert aws._failure(None, (None, {"ResponseMetadata": {"HTTPStatusCode": 503}})) == "HTTP 503"
    assert aws._failure(None, (None, {"ResponseMetadata": {"HTTPStatusCode": 200}})) is None


def answering(statuses: Iterator[int], body: bytes) -> Any:
    """A ``before-send`` handler answering each request with the next status and ``body`` (no network)."""
    from botocore.awsrequest import AWSResponse

    raw = type("Raw", (), {"stream": lambda *_, **__: [body]})()
    return lambda request, **_: AWSResponse(request.url, next(statuses), {}, raw)


def test_every_client_carries_the_hooks(notes: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each service's client, answered 503 once and then 200 (no network): the retry is noted."""
    monkeypatch.setattr(aws, "NOTICE_AFTER_SECONDS", 0.0)
    for service, operation in (
        ("s3", "list_buckets"),
        ("dynamodb", "list_tables"),
        ("dynamodbstreams", "list_streams"),
    ):
        client = aws.make_client(service, region="us-east-1", endpoint_url="http://127.0.0.1:9")
        body = b"{}" if service != "s3" else b"<ListAllMyBucketsResult></ListAllMyBucketsResult>"
        client.meta.events.register("before-send", answering(iter([503, 200]), body))
        getattr(client, operation)()
    assert [note.split(":")[0] for note in notes] == ["s3", "dynamodb", "dynamodbstreams"]
    assert all("attempt 2 of at most 8 (the last one: HTTP 503)" in note for note in notes), notes


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
