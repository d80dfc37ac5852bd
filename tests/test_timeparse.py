from __future__ import annotations

import pytest

from ddb_backup.errors import UserError
from ddb_backup.timeparse import parse_time


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-11-27T10:00:00Z", 1795773600.0),
        ("2026-11-27T10:00:00", 1795773600.0),
        ("2026-11-27T11:00:00+01:00", 1795773600.0),
        ("2026-11-27T10:00:00.250Z", 1795773600.25),
        ("1795773600", 1795773600.0),
        ("1795773600.5", 1795773600.5),
        ("-15m", 1000.0 - 900),
        ("-2h", 1000.0 - 7200),
        ("-1d", 1000.0 - 86400),
        ("-30s", 970.0),
    ],
)
def test_times_in_every_accepted_form(text: str, epoch: float) -> None:
    assert parse_time(text, now=lambda: 1000.0) == epoch


@pytest.mark.parametrize("text", ["yesterday", "15m", "-15x", "2026-13-01T00:00:00Z", ""])
def test_unreadable_times_say_which_forms_work(text: str) -> None:
    with pytest.raises(UserError, match="ISO 8601"):
        parse_time(text)
