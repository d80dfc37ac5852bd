"""DynamoDB stream records: a thin, read-only view over Lambda's event dicts.

Also converts GetRecords answers (boto3's shape) into Lambda's event shape, so that the
stream runner and the demo hand the handler exactly what Lambda would.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.timeparse import MILLISECONDS_FROM, MILLISECONDS_UNTIL

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
FULL_IMAGE_VIEW = "NEW_AND_OLD_IMAGES"
DYNAMODB_SOURCE = "aws:dynamodb"


class BadRecord(ValueError):
    """A record the handler cannot back up; the message says which setting to change."""


class StreamRecord:
    """One DynamoDB stream record in Lambda's event shape; ``raw`` is kept as received."""

    __slots__ = ("_canonical_key", "_key_json", "dynamodb", "raw")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        if not isinstance(raw, Mapping):
            raise BadRecord(f"a stream record must be a JSON object, got {type(raw).__name__}")
        self.raw = raw
        self._canonical_key: dict[str, Any] | None = None
        self._key_json: str | None = None
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
        """``ApproximateCreationDateTime`` as epoch seconds, to the microsecond (``event_time_of``)."""
        try:
            return event_time_of(self.dynamodb.get("ApproximateCreationDateTime"))
        except ValueError as err:
            raise BadRecord(f"record {self.sequence_number}: ApproximateCreationDateTime {err}") from err

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
    def canonical_key(self) -> dict[str, Any]:
        """``keys`` with canonical values (``format.keys.canonical_key``), computed once per record;
        ``InvalidKeyError`` for a key no item can have."""
        if self._canonical_key is None:
            self._canonical_key = k.canonical_key(self.keys)
        return self._canonical_key

    @property
    def key_json(self) -> str:
        """``format.keys.key_json`` of the record's key, computed once per record: it groups the batch's
        records by item and names the item's object."""
        if self._key_json is None:
            self._key_json = k.canonical_key_json(self.canonical_key)
        return self._key_json

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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = Decimal("0.000001")


def event_time_of(value: Any) -> float:
    """Epoch seconds of an ``ApproximateCreationDateTime`` as Lambda gives it (a number), as the AWS CLI
    prints it (ISO 8601 with an offset, e.g. ``2026-11-27T10:00:00+00:00``; or a number as text), or as
    boto3 parses it (a ``datetime``); a number of 12 or 13 digits is epoch milliseconds (``timeparse``'s
    rule: as seconds it would be after the year 5138). Whole seconds, milliseconds and microseconds are kept as given;
    finer digits are dropped (rounded down, as AWS rounds event times). ``ValueError`` says what is wrong.
    """
    if isinstance(value, datetime):
        return _epoch_of(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"is missing or not a time: a {type(value).__name__} (expected epoch seconds or ISO 8601)")
    text = repr(value) if isinstance(value, float) else str(value).strip()  # repr: a float's shortest digits
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        return _epoch_of(_iso_moment(text))
    if not seconds.is_finite():
        raise ValueError("is not a finite number of seconds")
    if seconds >= MILLISECONDS_UNTIL:
        raise ValueError("is too large for epoch seconds or milliseconds (microseconds are not accepted)")
    if seconds >= MILLISECONDS_FROM:  # as seconds: after the year 5138; the CLI's times follow the same rule
        seconds /= 1000
    return float(seconds.quantize(_MICROSECOND, rounding=ROUND_FLOOR))


def _iso_moment(text: str) -> datetime:
    if text[-1:] == "z":
        text = text[:-1] + "Z"  # RFC 3339 allows a lower-case z; fromisoformat does not
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(
            "is neither epoch seconds nor an ISO 8601 time (e.g. 1732700000 or 2026-11-27T10:00:00Z)"
        ) from err
    if moment.tzinfo is None:
        raise ValueError("is an ISO 8601 time without a time zone: add Z or +00:00, as the AWS CLI prints it")
    return moment


def _epoch_of(moment: datetime) -> float:
    """Exact to the microsecond (``datetime.timestamp`` can be off by one in the last digit)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # boto3's datetimes carry tzutc; a naive one is UTC by convention
    return ((moment - _EPOCH) // timedelta(microseconds=1)) / 1_000_000


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
        dynamodb["ApproximateCreationDateTime"] = _epoch_of(created)
    for image in ("Keys", "NewImage", "OldImage"):
        if image in dynamodb:
            dynamodb[image] = {name: to_lambda_value(value) for name, value in dynamodb[image].items()}
    converted = {name: value for name, value in record.items() if name != "dynamodb"}
    converted.update({"dynamodb": dynamodb, "eventSourceARN": stream_arn, "awsRegion": record.get("awsRegion", region)})
    return converted
