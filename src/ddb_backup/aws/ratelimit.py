"""A token bucket for read or write capacity: callers wait while the bucket is in debt, then spend what a
request actually consumed (DynamoDB reports it only afterwards, so one request may overdraw)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` units per second, at most ``burst`` saved up (default: one second's worth)."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = rate if burst is None else burst
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()
        self.waited = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Block until the bucket holds at least nothing (no debt); True then. With ``stop``, return
        False as soon as it is set (a restore stopped by Ctrl-C must not wait for its turn)."""
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 0:
                    return True
                delay = -self._tokens / self.rate
                self.waited += delay
            if stop is None:
                self._sleep(delay)
            elif stop.wait(delay):
                return False

    def spend(self, units: float) -> None:
        with self._lock:
            self._refill()
            self._tokens -= units
