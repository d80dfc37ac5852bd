"""A full backup racing a live table, with the stream's changes reaching S3 only afterwards (the
function lagged), restores exactly to moments before, during and after the backfill."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from ddb_backup.aws.clients import make_client
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.capture.full_backup import FullBackup, FullBackupOptions, FullBackupSummary
from ddb_backup.lab.demo import KEY_SCHEMA, Snapshot, Workload, create_table, note_moment, read_stream, scan_table
from ddb_backup.restore.execute import RestoreOptions, restore
from ddb_backup.store.memory import MemoryStore

TABLE = "backfilled"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        yield make_client("dynamodb"), make_client("dynamodbstreams")


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_backfill_and_stream_restore_exactly_before_during_and_after(
    aws: tuple[Any, Any], tmp_path: Any, seed: int
) -> None:
    dynamodb, streams = aws
    stream_arn = create_table(dynamodb, TABLE)
    store = MemoryStore()
    workload = Workload(dynamodb, TABLE, seed=seed)
    moments: list[tuple[str, float, Snapshot]] = []

    # GIVEN changes before the backfill
    for _ in range(25):
        workload.step()
    moments.append(("before", *note_moment(dynamodb, TABLE)))

    # WHEN a full backup scans in small pages while the table keeps changing between pages
    pages = {"seen": 0}

    def between_pages(summary: FullBackupSummary) -> None:
        pages["seen"] += 1
        for _ in range(3):
            workload.step()
        if pages["seen"] == 2:
            moments.append(("during", *note_moment(dynamodb, TABLE)))

    options = FullBackupOptions(segments=1, page_size=3, workers=2)
    FullBackup(dynamodb, store, TABLE, KEY_SCHEMA, options, on_progress=between_pages).run()
    assert pages["seen"] > 2
    for _ in range(25):
        workload.step()
    moments.append(("after", *note_moment(dynamodb, TABLE)))

    # AND only then the function delivers the stream, so S3's clock says every change came later
    records = read_stream(streams, stream_arn, "us-east-1")
    capture = Capture(store, CaptureSettings())
    for start in range(0, len(records), 10):
        assert capture.process(records[start : start + 10]).failures == []
    capture.close()

    # THEN each moment restores to exactly what the table held
    for label, at, expected in moments:
        target = f"{TABLE}-{label}"
        options_at = RestoreOptions(
            bucket="memory", source=TABLE, target=target, at=at, checkpoint=tmp_path / f"{label}.json", workers=4
        )
        restore(options_at, store, dynamodb, now=lambda at=at: at + 60)
        restored = scan_table(dynamodb, target)
        assert (label, restored) == (label, expected)
