"""The demo is the main job on the embedded emulator: it must run and every restore must match."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ddb_backup.cli import cli
from ddb_backup.lab.demo import PHASES, run_demo

pytestmark = pytest.mark.e2e


def test_the_demo_restores_three_moments_exactly() -> None:
    lines: list[str] = []
    checks = run_demo(lines.append, seed=3)
    assert len(checks) == PHASES
    assert all(check.match and check.expected == check.restored for check in checks), checks
    assert any("full backup: 40 rows" in line for line in lines)
    # the stream was written after every moment: exact mode had to read metadata to get it right
    assert all(check.metadata_reads > 0 for check in checks)


def test_the_demo_under_chaos_still_matches_and_prints_the_table() -> None:
    result = CliRunner().invoke(cli, ["demo", "--chaos", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "S3 faults" in result.output and "injected" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("t")]
    assert len(rows) == PHASES and all(line.endswith("yes") for line in rows)
