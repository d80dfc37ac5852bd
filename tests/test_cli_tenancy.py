"""``--tenant-column`` / ``--no-tenants`` on every reader command (docs/format.md, "Which objects a reader
takes as a table's"): the table's tenant attribute for the original tool's objects."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ddb_backup.cli import cli

READERS = {
    "restore": ["--table", "orders", "--at", "-1m", "--to-table", "copy"],
    "history": ["--table", "orders", "--key", '{"pk":"a"}'],
    "diff": ["--table", "orders", "--from", "-1h"],
    "export": ["--table", "orders", "--at", "-1m", "--to", "out"],
    "verify": ["--table", "orders"],
    "tables": [],
}


@pytest.mark.parametrize("command", list(READERS))
def test_every_reader_takes_the_tables_tenant_attribute(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "--tenant-column" in result.output and "--no-tenants" in result.output


@pytest.mark.parametrize("command", list(READERS))
def test_both_at_once_is_one_line_and_exit_2_before_any_request(command: str) -> None:
    args = [command, "--bucket", "bk", *READERS[command], "--tenant-column", "tenant", "--no-tenants"]
    result = CliRunner().invoke(cli, args, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert "--tenant-column and --no-tenants contradict each other" in result.output
    assert "Traceback" not in result.output
