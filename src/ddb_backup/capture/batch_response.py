"""Lambda's partial batch response, between the stream runner and the capture code it calls.

The handler answers ``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}``; the records
before the lowest listed one are acknowledged, and delivery resumes at it. Source: AWS Lambda
developer guide, "Configuring partial batch response with DynamoDB and Lambda".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ddb_backup.capture.engine import Capture

BatchHandler = Callable[[dict[str, Any]], Mapping[str, Any]]


def lowest_failure(response: Any, records: Sequence[Mapping[str, Any]]) -> str | None:
    """The lowest failed sequence number of a partial batch response; as Lambda does, a malformed
    response or an identifier not in the batch fails the whole batch."""
    first = str(records[0]["dynamodb"]["SequenceNumber"])
    if not isinstance(response, Mapping):
        return None if response is None else first
    failures = response.get("batchItemFailures") or []
    in_batch = {str(record["dynamodb"]["SequenceNumber"]) for record in records}
    identifiers = [item.get("itemIdentifier") if isinstance(item, Mapping) else None for item in failures]
    if any(not identifier or str(identifier) not in in_batch for identifier in identifiers):
        return first
    return min((str(identifier) for identifier in identifiers), key=int, default=None)


def capture_handler(capture: Capture) -> BatchHandler:
    """The Lambda handler's work on one event (``Capture.process``), answering its partial batch response."""

    def handle(event: dict[str, Any]) -> Mapping[str, Any]:
        return capture.process(event["Records"]).lambda_response()

    return handle
