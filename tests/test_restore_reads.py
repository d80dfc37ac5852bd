"""Restore's image reads without a waiting thread (issue 16): the GET pool, the native ``get_soon``, and a
read that failed there made again through the store's retries."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ddb_backup.aws.clients import make_client
from ddb_backup.lab.demo import create_bucket
from ddb_backup.restore import pools
from ddb_backup.restore.pools import GetPool
from ddb_backup.restore.resolve import ELSEWHERE, TAKE, Resolver
from ddb_backup.restore.timeline import ItemState
from ddb_backup.store import NoSuchVersion, StoredObject, StoreError, StoreUnreachable
from ddb_backup.store.memory import MemoryStore
from ddb_backup.store.native import NativeS3Store
from ddb_backup.store.retry import RetryingStore, soon_getter
from test_restore_execute import backup, fake_with_source, options, pks, run

Then = Callable[[Callable[[], StoredObject]], None]


class _Started:
    """A fake ``Pending``: cancelling it ends the GET with an error, as awscrt's cancel does."""

    def __init__(self, then: Then, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self.then = then
        self.cancelled = False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.then(_raising(StoreError("GET cancelled")))


def _raising(err: BaseException) -> Callable[[], StoredObject]:
    def fetched() -> StoredObject:
        raise err

    return fetched


def _stored(key: str) -> StoredObject:
    return StoredObject(key=key, version_id="v1", last_modified=None, metadata={}, body=key.encode())  # type: ignore[arg-type]


def test_each_get_ends_in_its_work_on_a_pool_thread_with_what_it_fetched() -> None:
    # GIVEN a pool whose GETs end 10 ms later on another thread (as on the native client's event loop)
    def start_get(key: str, version_id: str, then: Then) -> _Started:
        threading.Timer(0.01, then, (lambda: _stored(key),)).start()
        return _Started(then)

    got: list[tuple[str, str, str]] = []
    pool = GetPool(4, threading.Event(), start_get)
    # WHEN 12 items are submitted (at most 4 GETs in flight at once)
    for n in range(12):
        assert pool.submit_get(
            f"k{n}", "v1", lambda fetched, n: got.append((fetched().key, f"k{n}", threading.current_thread().name)), n
        )
    pool.wait(lambda: None)
    # THEN each work ran once, on a pool thread, with its own item's object
    assert sorted(a for a, _, _ in got) == sorted(f"k{n}" for n in range(12))
    assert all(a == b and name.startswith("get-") for a, b, name in got)


def test_without_a_native_client_the_work_reads_the_item_itself() -> None:
    pool = GetPool(2, threading.Event())
    seen: list[Any] = []
    assert pool.submit_get("k", "v", lambda fetched, x: seen.append((fetched, x)), 7)
    assert pool.submit(lambda fetched, x: seen.append((fetched, x)), None, 8)
    pool.wait(lambda: None)
    assert sorted(seen, key=lambda pair: pair[1]) == [(None, 7), (None, 8)]


def test_the_first_failure_of_a_work_is_kept_for_the_reader() -> None:
    def start_get(key: str, version_id: str, then: Then) -> _Started:
        then(lambda: _stored(key))
        return _Started(then)

    pool = GetPool(2, threading.Event(), start_get)

    def work(fetched: Callable[[], StoredObject]) -> None:
        raise ValueError(f"bad {fetched().key}")

    assert pool.submit_get("k1", "v", work)
    pool.wait(lambda: None)
    with pytest.raises(ValueError, match="bad k1"):
        pool.raise_failure()


def test_a_get_in_flight_too_long_is_cancelled_and_its_work_sees_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a GET that never ends by itself, started 61 s ago by the pool's clock
    monkeypatch.setattr(pools, "WAIT_SECONDS", 0.01)
    started: list[_Started] = []

    def start_get(key: str, version_id: str, then: Then) -> _Started:
        started.append(_Started(then, started=time.monotonic() - pools.CALL_TIMEOUT_S - 1))
        return started[-1]

    outcomes: list[str] = []

    def work(fetched: Callable[[], StoredObject]) -> None:
        try:
            fetched()
        except StoreError as err:
            outcomes.append(str(err))

    pool = GetPool(2, threading.Event(), start_get)
    assert pool.submit_get("k", "v", work)
    # WHEN the pool waits for it
    pool.wait(lambda: None)
    # THEN it was cancelled, and its work went on at once with an error (it reads again: see the resolver
    # test), not waiting for the cancelled request to end (a stalled server may never answer it)
    assert (
        started[0].cancelled and len(outcomes) == 1 and f"no answer within {pools.CALL_TIMEOUT_S:.0f} s" in outcomes[0]
    )


def test_the_pool_keeps_at_most_one_get_per_thread_in_flight_and_stops_taking_more_once_stopped() -> None:
    """--workers N: at most N image GETs in flight per process (the README's promise)."""
    stop = threading.Event()
    pool = GetPool(2, stop, lambda key, version_id, then: _Started(then))  # GETs that never end
    assert all(pool.submit_get(f"k{n}", "v", lambda fetched: None) for n in range(2))
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    assert pool.submit_get("k2", "v", lambda fetched: None) is False  # blocked until stopped, then refused
    assert time.monotonic() - began >= 0.25
    pool.wait(lambda: None)  # stopped: returns without the 2 GETs


def test_a_get_that_ends_while_it_is_being_started_is_handed_on_once() -> None:
    got: list[str] = []

    def start_get(key: str, version_id: str, then: Then) -> _Started:
        then(lambda: _stored(key))  # awscrt may end a request before make_request returns
        return _Started(then)

    pool = GetPool(2, threading.Event(), start_get)
    assert pool.submit_get("k", "v", lambda fetched: got.append(fetched().key))
    pool.wait(lambda: None)
    assert got == ["k"]


def _state(store: MemoryStore, key: str) -> ItemState:
    entry = next(iter(store.list_versions(key)))
    return ItemState(object_key=key, version=entry)


def _resolver(store: Any) -> Resolver:
    from ddb_backup.format import keys as k

    return Resolver(store, "", "orders", k.KeySchema("pk", "sk"), keyless_as_reject=True)


def test_a_get_that_failed_on_the_native_client_is_read_again_through_the_store_and_a_gone_one_is_not() -> None:
    # GIVEN a backup, and GETs made without a waiting thread that failed
    store = backup()
    latest = [e for e in store.list_versions("orders/") if e.is_latest and not e.is_delete_marker]
    key = next(e.key for e in latest if store.get(e.key, e.version_id).metadata["event-name"] != "REMOVE")
    state = _state(store, key)
    resolver = _resolver(RetryingStore(store))
    # WHEN the failure is a transient one (the native client's retries spent), the item is read again
    again = resolver.resolve(state, 1e10, fetched=_raising(StoreError("connection reset")))
    assert again.kind == TAKE and again.image is not None
    # WHEN the version is gone since listing, it is not read again: the item is held elsewhere or removed
    gone = resolver.resolve(state, 1e10, fetched=_raising(NoSuchVersion("NoSuchVersion")))
    assert gone.kind == ELSEWHERE and "gone since listing" in gone.reason


class _SoonStore(MemoryStore):
    """The in-memory store with a native-like ``get_soon``: each GET ends on a thread of its own, a
    quarter of them failing as a spent native retry would."""

    def __init__(self, inner: MemoryStore, seed: int) -> None:
        self.__dict__.update(inner.__dict__)
        self.random = random.Random(seed)
        self.started = self.failed = 0
        self._lock = threading.Lock()

    def get_soon(self, key: str, version_id: str | None, then: Then) -> _Started:
        with self._lock:
            self.started += 1
            fail = self.random.random() < 0.25
            self.failed += fail
        fetched = _raising(StoreError("injected")) if fail else (lambda: self.get(key, version_id))
        threading.Timer(self.random.random() / 100, then, (fetched,)).start()
        return _Started(then)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_restore_through_gets_without_waiting_threads_writes_the_same_table_under_faults(
    tmp_path: Path, seed: int
) -> None:
    # GIVEN the same backup behind the plain store and behind one whose GETs end on other threads
    plain, soon = backup(), _SoonStore(backup(), seed)
    assert soon_getter(RetryingStore(soon)) is not None and soon_getter(RetryingStore(plain)) is None
    # WHEN both restore the table, a quarter of the native GETs failing
    expected, got = fake_with_source(), fake_with_source()
    run(plain, expected, options(tmp_path))
    retrying: Any = RetryingStore(soon)
    summary = run(retrying, got, options(tmp_path, checkpoint=tmp_path / "soon.json"))
    # THEN the tables are the same, the GETs went the native way, and the failed ones were read again
    assert pks(got) == pks(expected) == [f"p{n}" for n in range(10)]
    assert got.dump("copy") == expected.dump("copy")
    assert soon.started == summary.puts == 10 and soon.failed > 0


# -- the native client's get_soon, on moto's HTTP server ------------------------------------------------


def _soon(store: NativeS3Store, key: str, version_id: str | None) -> tuple[Callable[[], StoredObject], str]:
    done: list[tuple[Callable[[], StoredObject], str]] = []
    ended = threading.Event()

    def then(fetched: Callable[[], StoredObject]) -> None:
        done.append((fetched, threading.current_thread().name))
        ended.set()

    store.get_soon(key, version_id, then)
    assert ended.wait(30)
    return done[0]


@pytest.mark.e2e
def test_get_soon_answers_as_get_and_says_no_such_version_alike(moto_url: str) -> None:
    client = make_client("s3", endpoint_url=moto_url, region="us-east-1")
    create_bucket(client, "bk-native-soon")
    store = NativeS3Store(client, "bk-native-soon")
    first = store.put("t/a b", b'{"x": 1}', {"event-name": "INSERT", "event-time": "1.5"}).version_id
    store.put("t/a b", b"{}", {"event-name": "MODIFY"})
    fetched, thread = _soon(store, "t/a b", first)
    assert fetched() == store.get("t/a b", first)
    assert fetched().metadata == {"event-name": "INSERT", "event-time": "1.5"}
    assert thread != threading.current_thread().name
    missing, _ = _soon(store, "t/a b", "no-such-version-id")
    with pytest.raises(NoSuchVersion):
        missing()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that takes connections and requests and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_a_get_soon_cancelled_ends_with_a_store_error(silent_server: int) -> None:
    client = make_client("s3", endpoint_url=f"http://127.0.0.1:{silent_server}", region="us-east-1")
    store = NativeS3Store(client, "bk")
    ended = threading.Event()
    got: list[Callable[[], StoredObject]] = []

    def then(fetched: Callable[[], StoredObject]) -> None:
        got.append(fetched)
        ended.set()

    pending = store.get_soon("k", "v", then)
    time.sleep(0.2)
    assert not ended.is_set()  # no answer: in flight
    pending.cancel()
    assert ended.wait(10)
    with pytest.raises(StoreError):
        got[0]()


# -- an endpoint that cannot be reached (a fresh tester's finding) ----------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_on_the_native_client_is_store_unreachable_worded_as_botocore_words_it() -> None:
    client = make_client("s3", endpoint_url=f"http://127.0.0.1:{_closed_port()}", region="us-east-1")
    store = NativeS3Store(client, "bk")
    with pytest.raises(StoreUnreachable, match=r"Could not connect to the endpoint URL: http://127\.0\.0\.1"):
        store.head("k", "v")
    fetched, _ = _soon(store, "k", "v")
    with pytest.raises(StoreUnreachable):
        fetched()


class _Refusing(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        self.calls += 1
        raise StoreUnreachable("GET: Could not connect to the endpoint URL: http://127.0.0.1:9")


def test_the_reader_does_not_retry_an_unreachable_endpoint_again() -> None:
    inner = _Refusing()
    with pytest.raises(StoreUnreachable):
        RetryingStore(inner, sleep=lambda seconds: None).get("k", "v")
    assert inner.calls == 1  # the client's own retries were spent already


def test_a_worker_that_could_not_connect_makes_the_command_say_so_and_how_to_go_on(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ddb_backup.cli import cli
    from ddb_backup.restore.processes import FanOut
    from ddb_backup.restore.writer import READ_RESUME_HINT

    fan_out = FanOut.__new__(FanOut)
    fan_out.stop = threading.Event()
    fan_out.failure = (
        "StoreUnreachable",
        "GET s3://bk/t/x: Could not connect to the endpoint URL: http://h",
        READ_RESUME_HINT,
    )
    with pytest.raises(Exception) as raised:
        fan_out._raise_failure()
    assert isinstance(raised.value.__cause__, StoreUnreachable)

    @cli.command("raise-it")
    def raise_it() -> None:
        raise raised.value

    try:
        result = CliRunner().invoke(cli, ["raise-it"])
    finally:
        cli.commands.pop("raise-it")
    assert result.exit_code == 3
    assert result.output.strip() == (
        "error: cannot connect to AWS: GET s3://bk/t/x: Could not connect to the endpoint URL: http://h "
        "(Try: check --endpoint-url / AWS_ENDPOINT_URL, --region and the network; then run the same command "
        "again with --resume)"
    )
    assert "capacity" not in result.output


def test_a_connection_the_server_closed_is_not_retried_again_by_the_reader() -> None:
    """botocore already made its 8 attempts; the reader used to make 6 more rounds of them."""
    from botocore.exceptions import ConnectionClosedError

    calls = []

    class Closing(MemoryStore):
        def get(self, key: str, version_id: str | None = None) -> StoredObject:
            calls.append(key)
            raise StoreError("get_object: closed") from ConnectionClosedError(endpoint_url="http://h")

    with pytest.raises(StoreError):
        RetryingStore(Closing(), sleep=lambda seconds: None).get("k", "v")
    assert calls == ["k"]


def test_a_get_ending_on_its_own_thread_while_it_is_being_registered_is_handed_on_once() -> None:
    """The race between a GET's end (the client's thread) and its registration (the submitting thread),
    made certain: the end looks for the GET just before it is registered, and is slow to note it."""

    class SlowToNoteAMiss(dict[int, Any]):
        def pop(self, key: int, default: Any = None) -> Any:
            found = super().pop(key, default)
            if found is default:
                time.sleep(0.2)  # the submitting thread registers the GET meanwhile
            return found

    def start_get(key: str, version_id: str, then: Then) -> _Started:
        threading.Thread(target=then, args=(lambda: _stored(key),)).start()
        time.sleep(0.05)  # the end has looked (and missed) before this returns
        return _Started(then)

    got: list[str] = []
    pool = GetPool(2, threading.Event(), start_get)
    pool._pending = SlowToNoteAMiss()
    assert pool.submit_get("k", "v", lambda fetched: got.append(fetched().key))
    waiter = threading.Thread(target=pool.wait, args=(lambda: None,), daemon=True)
    waiter.start()
    waiter.join(10)
    assert not waiter.is_alive() and got == ["k"], "the GET's end was lost"
