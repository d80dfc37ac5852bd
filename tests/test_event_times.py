"""ApproximateCreationDateTime as Lambda, GetRecords and the AWS CLI give it (issue 12.9;
docs/format.md, "Versions": ``event-time``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from builders import put
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.records import BadRecord, StreamRecord
from ddb_backup.format import version_meta as vm
from ddb_backup.store.memory import MemoryStore

A = {"pk": {"S": "a"}}
WHOLE = 1_795_773_600  # 2026-11-27T10:00:00Z


@pytest.mark.parametrize(
    ("given", "text"),
    [
        (WHOLE, "1795773600"),  # Lambda: epoch seconds, whole on AWS
        (float(WHOLE), "1795773600"),
        (1_795_773_600.25, "1795773600.25"),  # moto: milliseconds
        (1_795_773_600.123456, "1795773600.123456"),  # microseconds, kept
        ("1795773600.5", "1795773600.5"),
        ("2026-11-27T10:00:00Z", "1795773600"),
        ("2026-11-27T10:00:00+00:00", "1795773600"),  # the AWS CLI's get-records output
        ("2026-11-27T11:00:00+01:00", "1795773600"),
        ("2026-11-27T10:00:00.250000+00:00", "1795773600.25"),
        ("2026-11-27T10:00:00.123456Z", "1795773600.123456"),
        ("2026-11-27T10:00:00.000001Z", "1795773600.000001"),
        ("2026-11-27T10:00:00.123456789Z", "1795773600.123456"),  # finer than a microsecond: floored
        (datetime(2026, 11, 27, 10, 0, 0, 999, tzinfo=UTC), "1795773600.000999"),  # boto3's GetRecords
        (1_795_773_600_250, "1795773600.25"),  # epoch milliseconds, recognised by magnitude (timeparse's rule)
        ("1795773600250", "1795773600.25"),
        ("2026-11-27T10:00:00z", "1795773600"),  # RFC 3339 allows a lower-case z
    ],
)
def test_event_times_in_every_notation_keep_their_precision(given: Any, text: str) -> None:
    record = StreamRecord(put(A, seq=1, at=given))
    assert Decimal(repr(record.event_time)) == Decimal(text)
    meta = vm.VersionMeta(vm.INSERT, record.event_time, sequence_number="1")
    assert meta.to_s3()[vm.EVENT_TIME] == text
    restored = vm.VersionMeta.from_s3(meta.to_s3())
    assert restored is not None and restored.event_time == record.event_time
    assert restored.to_s3()[vm.EVENT_TIME] == text


@pytest.mark.parametrize(
    "bad", ["2026-11-27T10:00:00", "yesterday", None, "", [1], True, 1_795_773_600_250_000, "nan", "-inf"]
)
def test_event_times_that_cannot_be_read_fail_clearly(bad: Any) -> None:
    record = StreamRecord(put(A, seq=7, at=bad))
    with pytest.raises(BadRecord, match="ApproximateCreationDateTime") as caught:
        _ = record.event_time
    assert "record 7" in str(caught.value)
    if bad == "2026-11-27T10:00:00":
        assert "time zone" in str(caught.value)


def test_a_replayed_cli_record_with_an_iso_time_is_backed_up() -> None:
    # GIVEN a record as `aws dynamodbstreams get-records` prints it, replayed through the handler's engine
    store = MemoryStore()
    report = Capture(store, CaptureSettings()).process([put(A, seq=9, at="2026-11-27T10:00:00.123+00:00")])
    # THEN it is written with its own time, to the millisecond given
    assert report.failures == []
    (row,) = list(store.list_versions(""))
    assert store.head(row.key).metadata[vm.EVENT_TIME] == "1795773600.123"


def test_times_are_shown_to_the_precision_they_have() -> None:
    assert vm.epoch_to_iso(WHOLE) == "2026-11-27T10:00:00Z"
    assert vm.epoch_to_iso(WHOLE + 0.25) == "2026-11-27T10:00:00.250Z"
    assert vm.epoch_to_iso(1_795_773_600.123456) == "2026-11-27T10:00:00.123456Z"
