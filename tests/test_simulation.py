"""Issue 12, "Must show": seeded histories of a live table through Lambda's event source mapping, then
restores at many times compared with the model (``ddb_backup.lab.simulation``; ``make soak`` runs more)."""

from __future__ import annotations

import logging

import pytest

from ddb_backup.capture import engine as capture
from ddb_backup.capture import full_backup as fb
from ddb_backup.lab.simulation import SimConfig, SimReport, Simulation, simulate
from ddb_backup.restore import timeline

SEEDS = range(48)


@pytest.fixture(autouse=True)
def quiet() -> None:
    logging.getLogger("ddb_backup").setLevel(logging.CRITICAL)  # injected faults log every failed record


def test_restores_after_every_delivery_lambda_allows_equal_the_model() -> None:
    # GIVEN 48 seeded histories: changes over many items and shards that split, a re-created table with
    # late batches of its old stream, Lambda's batches, partial responses, bisects, timeouts, fresh and warm
    # containers, duplicates, drops then a full backup, full backups racing the stream, S3 faults
    # WHEN each is delivered to the real Capture and ImageWriter, and restored at many times
    report = simulate(SEEDS)
    # THEN every restored item equals the model, and every kind of delivery happened, thousands of times
    assert report.mismatches == 0, "\n".join(report.examples)
    assert report.operations > 15_000 and report.states_compared > 30_000
    for kind in ("fresh_containers", "timeouts", "bisects", "duplicates", "dropped", "splits", "recreated_tables"):
        assert getattr(report, kind) > 0, kind
    assert report.races > 500 and report.images_repaired > 0 and report.faults > 500 and report.looks > 0


def test_the_simulation_is_reproducible() -> None:
    first, second = Simulation(7, SimConfig()).run(), Simulation(7, SimConfig()).run()
    assert vars(first) == vars(second)


@pytest.mark.parametrize(
    "broken",
    ["replay guard", "stream order", "racer check", "image clock"],
)
def test_the_simulation_finds_each_fault_of_issue_12(broken: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN one of the rules undone
    if broken == "replay guard":
        monkeypatch.setattr(capture, "is_new", lambda change, current: True)
    elif broken == "stream order":
        monkeypatch.setattr(capture.vm.StreamPosition, "after", lambda self, other: self.sequence > other.sequence)
    elif broken == "racer check":  # the writers' and the reader's both (each alone is covered below)
        undo_writers_racer_checks(monkeypatch)
        monkeypatch.setattr(timeline, "_settle_raced_removal", lambda *args: None)
    else:
        import ddb_backup.lab.simulation as sim

        monkeypatch.setattr(sim, "page_times", lambda page: (fb.read_time_for(page.started), page.ended))
    # WHEN the first histories run THEN restores differ from the model
    report: SimReport = simulate(range(24))
    assert report.mismatches > 0


def undo_writers_racer_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fb.ImageWriter, "_settle", lambda *args: None)
    monkeypatch.setattr(
        capture.Capture, "_unless_stale", lambda self, key, image, etag, behind: capture.Seen(image, etag)
    )


def test_without_the_writers_racer_checks_readers_still_never_resurrect_a_removal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN full backups whose racer check never runs (S3 faults, a crash between write and check), so
    # their images stay current over removals that raced them
    undo_writers_racer_checks(monkeypatch)
    # WHEN the first histories run THEN the reader's order of that pair keeps every restore exact
    report = simulate(range(24))
    assert report.races > 200
    assert report.mismatches == 0, "\n".join(report.examples)
