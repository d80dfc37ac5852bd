"""One segment of a consistent parallel Scan, paced by a shared token bucket of read capacity."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ddb_backup.ratelimit import TokenBucket


@dataclass(frozen=True)
class ScanPage:
    items: list[dict[str, Any]]
    units: float  # read capacity the page consumed
    started: float  # the clock just before the request: no item on the page was read earlier


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
        items = page.get("Items", [])
        units = float((page.get("ConsumedCapacity") or {}).get("CapacityUnits", 0) or 0)
        if limiter is not None:
            limiter.spend(units)
        yield ScanPage(items, units, started)
        if "LastEvaluatedKey" not in page:
            return
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
