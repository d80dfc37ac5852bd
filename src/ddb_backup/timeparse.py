"""Times as users write them: ISO 8601, epoch seconds, or relative to now (``-15m``, ``-2h``)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ddb_backup.errors import UserError

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
FORMS = "ISO 8601 (2026-11-27T10:00:00Z), epoch seconds (1795780800), or relative (-15m, -2h, -1d)"


def parse_time(text: str, *, now: Callable[[], float] = time.time) -> float:
    """Epoch seconds for ``text``. A time without a zone is UTC."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        return now() - float(relative.group(1)) * _UNITS[relative.group(2)]
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as err:
        raise UserError(f"cannot read the time {text!r}", f"write it as {FORMS}") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?$")


def parse_duration(text: str) -> float:
    """Seconds for ``60``, ``60s``, ``2m``, ``1h``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UserError(f"cannot read the duration {text!r}", "write it like 60s, 5m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]
