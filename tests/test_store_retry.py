"""Reads survive faults through RetryingStore; writes pass through once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddb_backup.lab.faults import FaultyStore
from ddb_backup.store import NoSuchVersion, StoreError
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.retry import RetryingStore
from hypothesis_profiles import scaled


def filled(keys: int, versions: int) -> MemoryStore:
    store = MemoryStore()
    for n in range(keys):
        for v in range(versions):
            store.put(f"t/{n:04d}", f"{n}.{v}".encode(), {"v": str(v)})
    return store


@settings(max_examples=scaled(25), deadline=None)
@given(seed=st.integers(0, 10_000), rate=st.sampled_from([0.1, 0.3]))
def test_a_listing_through_faults_equals_the_listing_without(seed: int, rate: float) -> None:
    # GIVEN 1,500 keys of 2 versions (three pages) behind injected faults
    inner = filled(1500, 2)
    store = RetryingStore(FaultyStore.with_fault_rate(inner, rate, seed=seed), sleep=lambda _: None, attempts=12)
    # WHEN the listing is read, THEN it is exactly the listing without faults, once each
    assert [e.version_id for e in store.list_versions("t/")] == [e.version_id for e in inner.list_versions("t/")]


def test_listing_resumes_inside_a_key_without_repeating_its_versions() -> None:
    inner = filled(3, 4)

    class FailOnce(MemoryStore):
        failed = False

        def list_versions(self, prefix: str, *, key_marker: str | None = None):  # type: ignore[no-untyped-def]
            for n, entry in enumerate(inner.list_versions(prefix, key_marker=key_marker)):
                if n == 6 and not FailOnce.failed:  # in the middle of the second key's versions
                    FailOnce.failed = True
                    raise StoreError("injected SlowDown")
                yield entry

    store = RetryingStore(FailOnce(), sleep=lambda _: None)
    assert [e.version_id for e in store.list_versions("t/")] == [e.version_id for e in inner.list_versions("t/")]
    assert store.retries == 1


def test_reads_retry_transient_errors_but_not_answers() -> None:
    store = RetryingStore(FaultyStore.with_fault_rate(filled(1, 1), 0.5, seed=3), sleep=lambda _: None, attempts=20)
    for _ in range(20):
        assert store.get("t/0000").body == b"0.0"
    with pytest.raises(NoSuchVersion):
        RetryingStore(MemoryStore(), sleep=lambda _: None).get("t/none")


def test_retries_are_bounded() -> None:
    store = RetryingStore(FaultyStore(filled(1, 1), internal_error=1.0), sleep=lambda _: None, attempts=3)
    with pytest.raises(StoreError):
        store.head("t/0000")
    assert store.retries == 2
