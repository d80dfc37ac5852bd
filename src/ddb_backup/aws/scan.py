"""One segment of a consistent parallel Scan, paced by a shared token bucket of read capacity."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from ddb_backup.aws.ratelimit import TokenBucket


@dataclass(frozen=True)
class ScanPage:
    items: list[dict[str, Any]]
    units: float  # read capacity the page consumed
    started: float  # the clock just before the request: no item on the page was read earlier
    ended: float  # the clock once the answer arrived: every item on the page was read by then
    server_time: float | None = None  # DynamoDB's clock: the answer's HTTP ``Date`` (whole seconds, rounded down)

    @property
    def elapsed(self) -> float:
        """Seconds from sending the request to its answer, by the local clock (its offset cancels out)."""
        return max(0.0, self.ended - self.started)


def server_time_of(answer: Mapping[str, Any]) -> float | None:
    """The HTTP ``Date`` header of a boto3 answer as epoch seconds; ``None`` when absent or unreadable."""
    headers = (answer.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    text = headers.get("date")
    if not isinstance(text, str):
        return None
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def scan_pages(
    dynamodb: Any,
    table: str,
    *,
    segment: int,
    total_segments: int,
    limiter: TokenBucket | None = None,
    page_size: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Iterator[ScanPage]:
    """The pages of one segment; each page is paid for in ``limiter`` after DynamoDB reports its cost."""
    args: dict[str, Any] = {
        "TableName": table,
        "Segment": segment,
        "TotalSegments": total_segments,
        "ConsistentRead": True,
        "ReturnConsumedCapacity": "TOTAL",
    }
    if page_size:
        args["Limit"] = page_size
    while True:
        if limiter is not None:
            limiter.wait()
        started = clock()
        page = dynamodb.scan(**args)
        ended = clock()
        items = page.get("Items", [])
        units = float((page.get("ConsumedCapacity") or {}).get("CapacityUnits", 0) or 0)
        if limiter is not None:
            limiter.spend(units)
        yield ScanPage(items, units, started, ended, server_time_of(page))
        if "LastEvaluatedKey" not in page:
            return
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
