from __future__ import annotations

import pytest

from ddb_backup.errors import UserError
from ddb_backup.timeparse import parse_duration, parse_time

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2026-11-27T10:00:00Z", 1795773600.0),
        ("2026-11-27T11:00:00+01:00", 1795773600.0),
        ("2026-11-27T10:00:00.250Z", 1795773600.25),
        ("1795773600", 1795773600.0),
        ("1795773600.5", 1795773600.5),
        ("1795773600000", 1795773600.0),  # epoch milliseconds, recognised by magnitude
        ("1795773600250", 1795773600.25),
        ("-15m", NOW - 900),
        ("-2h", NOW - 7200),
        ("-1d", NOW - 86400),
        ("-30s", NOW - 30),
        ("-0s", NOW),
    ],
)
def test_times_in_every_accepted_form(text: str, epoch: float) -> None:
    assert parse_time(text, now=lambda: NOW) == epoch


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "15m",
        "-15x",
        "2026-13-01T00:00:00Z",
        "",
        "2026-11-27T10:00:00",  # no zone: ambiguous, refused
        "2026-11-27",
        "1795773600000000",  # microseconds: neither seconds nor milliseconds
        "nan",
        "1e400",
        "-99999999999d",
    ],
)
def test_unreadable_or_ambiguous_times_say_which_forms_work(text: str) -> None:
    with pytest.raises(UserError, match="ISO 8601"):
        parse_time(text, now=lambda: NOW)


def test_a_time_without_a_zone_says_to_add_one() -> None:
    with pytest.raises(UserError, match="no time zone"):
        parse_time("2026-11-27T10:00:00", now=lambda: NOW)


@pytest.mark.parametrize("text", ["1900000000", "2030-01-01T00:00:00Z", "1900000000000"])
def test_a_future_time_is_refused_by_one_rule(text: str) -> None:
    with pytest.raises(UserError, match="in the future"):
        parse_time(text, now=lambda: NOW)


@pytest.mark.parametrize(("text", "seconds"), [("60", 60), ("60s", 60), ("2m", 120), ("25h", 90000), ("2d", 172800)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "", "1e999", "5y"])
def test_unreadable_durations(text: str) -> None:
    with pytest.raises(UserError, match="duration"):
        parse_duration(text)
