"""Sizing ListObjectVersions pages so that a listing which ends at a key reads few rows past it.

S3 has no "stop at this key" parameter: a listing asked for 1,000 rows answers 1,000 rows, so a key
range that ends 50 rows into a page paid for 950 rows of the next range (1.3-2.6x the bucket's versions
over a restore's 256 ranges). ``PageSizes`` asks for a small first page, then sizes each next page to
the rows it expects before the range's end, by where the last key listed lies between the range's
start and its end (MD5 names, and the plain-text ranges cut at characters, spread keys about evenly).
A page that still ends short of the boundary raises the floor of the next one, doubling, so a badly
spread range costs a few more requests, never many; the listing stops at the first key past ``end``.
"""

from __future__ import annotations

import math
import re

MAX_PAGE = 1000  # S3's most rows per ListObjectVersions page
FIRST_PAGE = 100
MIN_PAGE = 20
CLOSE_ENOUGH_ROWS = 25  # a guess this close ends the listing: a request costs about as much as 25 rows
SLACK_ROWS = 5
WINDOW_BYTES = 8  # how much of each key, after the part all keys of the range share, places a key


def key_position(key: str, low: str, high: str) -> float:
    """Where ``key`` lies between ``low`` and ``high`` in S3's order (UTF-8 bytes), from 0.0 to 1.0: the
    characters after their common prefix read as one number, in base 16 when all three are hex digits
    there (MD5 names), else in base 256 (a linear guess, exact for evenly spread names)."""
    low_b, high_b, key_b = (text.encode("utf-8") for text in (low, high, key))
    shared = 0
    while shared < min(len(low_b), len(high_b)) and low_b[shared] == high_b[shared]:
        shared += 1
    tails = [raw[shared : shared + WINDOW_BYTES * 2] for raw in (low_b, high_b, key_b)]
    hex_digits = all(_HEX.fullmatch(tail) for tail in tails)
    low_n, high_n, key_n = (_number(tail, hex_digits) for tail in tails)
    if key_b[:shared] != low_b[:shared] or high_n <= low_n:
        return 1.0 if key_b > low_b else 0.0
    return min(1.0, max(0.0, (key_n - low_n) / (high_n - low_n)))


_HEX = re.compile(rb"[0-9a-f]*")


def _number(tail: bytes, hex_digits: bool) -> int:
    if hex_digits:
        return int(tail.ljust(WINDOW_BYTES * 2, b"0"), 16)
    return int.from_bytes(tail[:WINDOW_BYTES].ljust(WINDOW_BYTES, b"\0"), "big")


class PageSizes:
    """The MaxKeys of each page of one listing that ends after key ``end`` (``low``: the key it starts
    after, or None to measure from the first key listed)."""

    def __init__(self, end: str, low: str | None = None) -> None:
        self.end = end
        self.low = low
        self.rows = 0
        self.keys = 0
        self.floor = MIN_PAGE
        self.pages = 0

    def first(self) -> int:
        return FIRST_PAGE

    def next(self, rows: int, keys: int, first_key: str, last_key: str) -> int:
        """The next page's size, after a page of ``rows`` rows over ``keys`` keys that ended at ``last_key``
        (before ``end``). The guess of what is left errs by about 1/sqrt(keys seen): while that error is
        many rows, ask for less than the guess (one more page, then a sharper guess); else a little more."""
        self.pages += 1
        self.rows += rows
        self.keys += keys
        low = self.low if self.low is not None else first_key
        done = key_position(last_key, low, self.end)
        if self.pages > 1:
            self.floor = min(MAX_PAGE, self.floor * 2)  # the last guess fell short: guess bigger
        if done <= 0.0:
            return max(self.floor, FIRST_PAGE)
        expected = self.rows * (1.0 - done) / done
        error = 1.0 / math.sqrt(max(1, self.keys))
        if expected * error > CLOSE_ENOUGH_ROWS:
            guess = expected * (1.0 - 2 * error)
        else:
            guess = expected * (1.0 + error) + SLACK_ROWS
        return min(MAX_PAGE, max(self.floor, math.ceil(guess)))
