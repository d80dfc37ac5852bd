"""Times and durations as users write them: one parser, one rule, for every command.

Accepted TIME forms (``FORMS``):

- ISO 8601 with a zone: ``2026-11-27T10:00:00Z``, ``2026-11-27T11:00:00+01:00``. Without a zone the
  time is ambiguous (UTC? the machine's zone?) and refused.
- epoch seconds: ``1795773600`` (or with a fraction);
- epoch milliseconds, recognised by magnitude: a number of 12 or 13 digits before any fraction
  (>= 1e11; as seconds that would be after the year 5138): ``1795773600000``;
- relative to now: ``-15m``, ``-2h``, ``-1d`` (units s, m, h, d, w).

A TIME later than now (plus one second of clock slack) is refused: no backup can hold it yet.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ddb_backup.errors import UserError
from ddb_backup.format.version_meta import epoch_to_iso

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_EPOCH = re.compile(r"^\d+(?:\.\d+)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MILLISECONDS_FROM = 1e11  # an epoch number this large is milliseconds (as seconds: year 5138)
MILLISECONDS_UNTIL = 1e14  # ... and from here on neither (microseconds, nanoseconds): refused
FUTURE_SLACK_SECONDS = 1.0
LATEST = datetime(9999, 12, 31, tzinfo=UTC).timestamp()
FORMS = (
    "ISO 8601 with a zone (2026-11-27T10:00:00Z), epoch seconds (1795773600) or milliseconds "
    "(1795773600000), or relative (-15m, -2h, -1d)"
)


def parse_time(text: str, *, now: Callable[[], float] = time.time) -> float:
    """Epoch seconds for ``text`` in one of ``FORMS``; ``UserError`` (with the forms) otherwise, and for
    a time without a zone or in the future."""
    value = text.strip()
    current = now()
    at = _parse(value, text, current)
    if not math.isfinite(at) or not 0 <= at <= LATEST:
        raise UserError(f"the time {text!r} is out of range", f"write it as {FORMS}")
    if at > current + FUTURE_SLACK_SECONDS:
        raise UserError(
            f"the time {text!r} ({epoch_to_iso(at)}) is in the future (now {epoch_to_iso(current)})",
            f"give a time in the past; write it as {FORMS}",
        )
    return at


def _parse(value: str, text: str, current: float) -> float:
    relative = _RELATIVE.match(value)
    if relative:
        return current - float(relative.group(1)) * _UNITS[relative.group(2)]
    if _EPOCH.match(value):
        number = float(value)
        if number >= MILLISECONDS_UNTIL:
            raise UserError(f"the time {text!r} is too large for epoch seconds or milliseconds", f"write it as {FORMS}")
        return number / 1000 if number >= MILLISECONDS_FROM else number
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as err:
        raise UserError(f"cannot read the time {text!r}", f"write it as {FORMS}") from err
    if moment.tzinfo is None:
        raise UserError(
            f"the time {text!r} has no time zone",
            f"add one, e.g. {value}Z for UTC; write it as {FORMS}" if "T" in value else f"write it as {FORMS}",
        )
    return moment.timestamp()


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?$")
DURATION_FORMS = "seconds or a number with a unit: 90, 90s, 30m, 25h, 2d"
LONGEST_DURATION = 366 * 86400.0  # no wait or lag the commands take is longer than a year


def parse_duration(text: str) -> float:
    """Seconds for ``60``, ``60s``, ``2m``, ``1h``, ``2d`` (at most ``LONGEST_DURATION``, a year);
    ``UserError`` otherwise."""
    match = _DURATION.match(text.strip())
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else math.inf
    if not math.isfinite(seconds):
        raise UserError(f"cannot read the duration {text!r}", f"write it as {DURATION_FORMS}")
    if seconds > LONGEST_DURATION:
        raise UserError(f"the duration {text!r} is longer than a year", f"give at most 366d; {DURATION_FORMS}")
    return seconds
