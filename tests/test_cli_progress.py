"""Plain progress lines (no terminal): the last state is shown, also when the command fails."""

from __future__ import annotations

import io

import pytest

from ddb_backup.cli.progress import progress


def test_the_last_state_is_shown_when_the_command_ends() -> None:
    out = io.StringIO()
    with progress("restore", out=out, force_plain=True) as update:
        update(0, None, "items put")
        update(25, None, "items put")  # within 5 s of the first line: held back
    assert out.getvalue().splitlines() == ["restore: 0 items put", "restore: 25 items put"]


def test_the_last_state_is_shown_when_the_command_fails() -> None:
    """A fresh tester's finding: a failed restore's last line said 0 items put after 25 were written."""
    out = io.StringIO()
    with pytest.raises(RuntimeError), progress("restore", out=out, force_plain=True) as update:
        update(0, None, "items put")
        update(25, None, "items put")
        raise RuntimeError("the endpoint went away")
    assert out.getvalue().splitlines() == ["restore: 0 items put", "restore: 25 items put"]
