"""Builders for stream records and events in Lambda's shape (GIVEN parts of tests)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).parent / "events"
REGION = "us-east-1"
_sequence = itertools.count(1000)


def stream_arn(table: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:123456789012:table/{table}/stream/2026-11-27T00:00:00.000"


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def record(
    event_name: str,
    keys: dict[str, Any],
    *,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    table: str = "orders",
    seq: int | None = None,
    at: float = 1_764_000_000.0,
    ttl: bool = False,
    view: str = "NEW_AND_OLD_IMAGES",
) -> dict[str, Any]:
    """One stream record as Lambda delivers it; images default to the key plus nothing."""
    sequence = next(_sequence) if seq is None else seq
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": at,
        "Keys": keys,
        "SequenceNumber": str(sequence),
        "SizeBytes": 10,
        "StreamViewType": view,
    }
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    raw: dict[str, Any] = {
        "eventID": f"ev-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn(table),
    }
    if ttl:
        raw["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return raw


def put(keys: dict[str, Any], attrs: dict[str, Any] | None = None, *, first: bool = True, **kw: Any) -> dict[str, Any]:
    image = {**keys, **(attrs or {})}
    return record("INSERT" if first else "MODIFY", keys, new=image, old=None if first else keys, **kw)


def remove(keys: dict[str, Any], attrs: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    return record("REMOVE", keys, old={**keys, **(attrs or {})}, **kw)


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}
