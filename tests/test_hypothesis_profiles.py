"""`make test` tries the same examples on every clone and keeps no example database (issue 14.9)."""

from __future__ import annotations

import os

from hypothesis import settings

from hypothesis_profiles import PROFILE_VARIABLE, scaled


def test_make_test_runs_hypothesis_derandomised_without_an_example_database() -> None:
    if os.environ.get(PROFILE_VARIABLE, "test") != "test":
        return  # `make soak` runs the random profile on purpose
    assert settings.default.derandomize
    assert settings.default.database is None
    assert scaled(150) == 150


def test_the_soak_profile_is_random_and_longer() -> None:
    soak = settings.get_profile("soak")
    assert not soak.derandomize and soak.database is None
    assert soak.max_examples > settings.get_profile("test").max_examples


def test_no_profile_times_an_example() -> None:
    # A deadline or the too_slow health check fails a correct test on a loaded CI machine (a listing
    # property test took 355 ms against the 200 ms default deadline).
    from hypothesis import HealthCheck

    for name in ("test", "soak"):
        profile = settings.get_profile(name)
        assert profile.deadline is None, name
        assert HealthCheck.too_slow in profile.suppress_health_check, name
