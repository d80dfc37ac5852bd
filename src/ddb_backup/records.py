"""DynamoDB stream records: a thin, read-only view over Lambda's event dicts.

Also converts GetRecords answers (boto3's shape) into Lambda's event shape, so that the
stream runner and the demo hand the handler exactly what Lambda would.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ddb_backup import version_meta as vm

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
FULL_IMAGE_VIEW = "NEW_AND_OLD_IMAGES"
DYNAMODB_SOURCE = "aws:dynamodb"


class BadRecord(ValueError):
    """A record the handler cannot back up; the message says which setting to change."""


class StreamRecord:
    """One DynamoDB stream record in Lambda's event shape; ``raw`` is kept as received."""

    __slots__ = ("dynamodb", "raw")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        if not isinstance(raw, Mapping):
            raise BadRecord(f"a stream record must be a JSON object, got {type(raw).__name__}")
        self.raw = raw
        source = raw.get("eventSource", DYNAMODB_SOURCE)
        if source != DYNAMODB_SOURCE:
            raise BadRecord(
                f"record {raw.get('eventID')!r} comes from {source!r}, not {DYNAMODB_SOURCE!r}: the function "
                "backs up DynamoDB streams only; check its event source mapping"
            )
        dynamodb = raw.get("dynamodb")
        if not isinstance(dynamodb, Mapping):
            raise BadRecord(
                f"record {raw.get('eventID')!r} has no 'dynamodb' section: is the event source "
                "mapping's source a DynamoDB stream?"
            )
        self.dynamodb = dynamodb

    @property
    def event_name(self) -> str:
        name = self.raw.get("eventName")
        if name not in (vm.INSERT, vm.MODIFY, vm.REMOVE):
            raise BadRecord(
                f"record {self.sequence_number}: unknown eventName {name!r} (expected INSERT, MODIFY or "
                "REMOVE): point the function's event source mapping at a DynamoDB stream"
            )
        return str(name)

    @property
    def event_id(self) -> str | None:
        value = self.raw.get("eventID")
        return None if value is None else str(value)

    @property
    def sequence_number(self) -> str:
        value = self.dynamodb.get("SequenceNumber")
        if value is None or not str(value).isdigit():
            raise BadRecord(f"record {self.event_id!r} has no valid dynamodb.SequenceNumber: {value!r}")
        return str(value)

    @property
    def sequence_int(self) -> int:
        return int(self.sequence_number)

    @property
    def event_time(self) -> float:
        """``ApproximateCreationDateTime`` as epoch seconds."""
        value = self.dynamodb.get("ApproximateCreationDateTime")
        if isinstance(value, datetime):
            return value.timestamp()
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as err:
            raise BadRecord(
                f"record {self.sequence_number}: ApproximateCreationDateTime missing or not a number: {value!r}"
            ) from err

    @property
    def keys(self) -> dict[str, Any]:
        keys = self.dynamodb.get("Keys")
        if not isinstance(keys, Mapping) or not keys:
            raise BadRecord(
                f"record {self.sequence_number}: dynamodb.Keys is missing or empty, so the item cannot be "
                "named: the event source must be a DynamoDB stream of the table"
            )
        return dict(keys)

    @property
    def new_image(self) -> dict[str, Any] | None:
        image = self.dynamodb.get("NewImage")
        return dict(image) if isinstance(image, Mapping) else None

    @property
    def old_image(self) -> dict[str, Any] | None:
        image = self.dynamodb.get("OldImage")
        return dict(image) if isinstance(image, Mapping) else None

    @property
    def stream_view_type(self) -> str | None:
        value = self.dynamodb.get("StreamViewType")
        return None if value is None else str(value)

    @property
    def table_name(self) -> str:
        arn = self.raw.get("eventSourceARN")
        return table_name_from_arn(arn) if isinstance(arn, str) else _missing_arn(self.sequence_number)

    @property
    def is_ttl_delete(self) -> bool:
        identity = self.raw.get("userIdentity")
        return isinstance(identity, Mapping) and identity.get("principalId") == TTL_PRINCIPAL

    def image_missing(self, which: str, why: str) -> BadRecord:
        """The error for a record whose stream does not carry an image we need."""
        view = self.stream_view_type or "one without it"
        return BadRecord(
            f"record {self.sequence_number} ({self.raw.get('eventName')}) has no {which}, which {why}; "
            f"the table's stream view type is {view}: set the table's StreamViewType to "
            f"{FULL_IMAGE_VIEW} (aws dynamodb update-table --stream-specification "
            f"StreamEnabled=true,StreamViewType={FULL_IMAGE_VIEW} after disabling the old stream)"
        )


def _missing_arn(sequence_number: str) -> str:
    raise BadRecord(
        f"record {sequence_number} has no eventSourceARN, which names the table: "
        "Lambda adds it; a stream reader must add it too"
    )


def table_name_from_arn(arn: str) -> str:
    """``arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL`` -> ``NAME``."""
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    pieces = resource.split("/")
    if len(pieces) < 2 or pieces[0] != "table" or not pieces[1]:
        raise BadRecord(f"eventSourceARN {arn!r} does not name a DynamoDB table (arn:...:table/NAME/stream/...)")
    return pieces[1]


def to_lambda_value(value: Any) -> Any:
    """A boto3 (low-level) attribute value with binary as base64 text, as Lambda's JSON carries it."""
    if isinstance(value, Mapping):
        return {name: _typed_to_lambda(name, inner) for name, inner in value.items()}
    return value


def _typed_to_lambda(type_name: str, inner: Any) -> Any:
    if type_name == "B" and isinstance(inner, bytes | bytearray):
        return base64.b64encode(bytes(inner)).decode("ascii")
    if type_name == "BS":
        return [base64.b64encode(bytes(b)).decode("ascii") if not isinstance(b, str) else b for b in inner]
    if type_name == "L":
        return [to_lambda_value(element) for element in inner]
    if type_name == "M":
        return {name: to_lambda_value(element) for name, element in inner.items()}
    return inner


def lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it: ``eventSourceARN`` added, times as epoch seconds,
    binary values as base64 text."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    for image in ("Keys", "NewImage", "OldImage"):
        if image in dynamodb:
            dynamodb[image] = {name: to_lambda_value(value) for name, value in dynamodb[image].items()}
    converted = {name: value for name, value in record.items() if name != "dynamodb"}
    converted.update({"dynamodb": dynamodb, "eventSourceARN": stream_arn, "awsRegion": record.get("awsRegion", region)})
    return converted
