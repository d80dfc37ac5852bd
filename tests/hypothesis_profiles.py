"""Hypothesis profiles, chosen by ``DDB_BACKUP_HYPOTHESIS_PROFILE`` (the Makefile sets it).

- ``test`` (the default; ``make test``): derandomised, so every run and every clean clone tries the
  same examples, and no example database: a failure found once is never replayed from a hidden
  ``.hypothesis`` folder in one clone only.
- ``soak`` (``make soak``): random, ten times the examples, no database either; a failure prints the
  ``@reproduce_failure`` blob to pin it in a test.

Tests that set their own ``max_examples`` write ``scaled(n)``, so the soak profile multiplies them too.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "DDB_BACKUP_HYPOTHESIS_PROFILE"
BASE_EXAMPLES = 100  # hypothesis' own default max_examples: the `test` profile's scale, 1x

# No deadline and no too_slow health check in any profile: both time the test, and a shared 2-core CI
# machine makes any example slow now and then (a 200 ms deadline failed a listing test under load).
# Slowness is measured by `make bench`, never by a test.
UNTIMED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile(
    "test", derandomize=True, database=None, max_examples=BASE_EXAMPLES, print_blob=True, **UNTIMED
)
settings.register_profile(
    "soak", derandomize=False, database=None, max_examples=10 * BASE_EXAMPLES, print_blob=True, **UNTIMED
)


def load() -> str:
    """Load the profile the environment names (default ``test``); an unknown name is an error."""
    name = os.environ.get(PROFILE_VARIABLE, "test")
    settings.load_profile(name)
    return name


def scaled(examples: int) -> int:
    """``examples`` under the `test` profile, proportionally more under a longer profile."""
    return max(1, examples * settings.default.max_examples // BASE_EXAMPLES)
