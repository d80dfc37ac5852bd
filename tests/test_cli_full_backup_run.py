"""Help texts of full-backup and run, and the progress helper's plain output."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from ddb_backup.cli import cli, progress


@pytest.mark.parametrize("command", ["full-backup", "run"])
def test_help_has_an_example_and_the_exit_codes(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert f"Example:\n    ddb-backup {command} --bucket" in result.output
    assert "Exit codes: 0" in result.output


def test_plain_progress_shows_the_first_and_the_final_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 1e9)
    out = io.StringIO()  # not a terminal: plain lines
    with progress.progress("scan", out=out) as update:
        update(1, 10, "a")
        update(5, 10, "b")  # too soon after the first line: held back
        update(10, 10, "c")
    assert out.getvalue().splitlines() == ["scan: 1 of 10 a", "scan: 10 of 10 c"]
