"""Every command's help shows an example (and its exit codes), whoever adds the command."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from ddb_backup.cli import cli

COMMANDS = sorted(cli.commands)


def test_the_inspecting_commands_are_registered() -> None:
    assert {"history", "diff", "verify", "export", "tables"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_an_example_in_its_help(name: str) -> None:
    command = cli.commands[name]
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`ddb-backup {name} --help` shows no example"
    assert isinstance(command, click.Command)
    assert f"ddb-backup {name}" in result.output
