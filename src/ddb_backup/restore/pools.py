"""The executor's bookkeeping: which key ranges are finished (for checkpoints), and the bounded pool of
image reads."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ddb_backup.restore.ranges import KeyRange
from ddb_backup.store import Fetched, StoredObject, StoreError
from ddb_backup.store.native import CALL_TIMEOUT_S


class InFlight(Protocol):
    """A GET in flight (``store.native.Pending``): when it started (``time.monotonic``), and its cancel."""

    @property
    def started(self) -> float: ...

    def cancel(self) -> None: ...


StartGet = Callable[[str, str, Callable[[Fetched], None]], InFlight]
WAIT_SECONDS = 0.2


class RangeTracker:
    """Knows when a key range is finished: listed to its end and all its items written."""

    def __init__(self, on_finished: Callable[[KeyRange, list[bytes]], None]) -> None:
        """``on_finished(range, digests)``: the range is written; ``digests`` are its items' key digests."""
        self._on_finished = on_finished
        self._open: dict[int, list[Any]] = {}  # index -> [outstanding writes, listed, digests]
        self._lock = threading.Lock()

    def _entry(self, key_range: KeyRange) -> list[Any]:
        return self._open.setdefault(key_range.index, [0, False, []])

    def present(self, key_range: KeyRange, digest: bytes | None, *, writes: int) -> None:
        with self._lock:
            entry = self._entry(key_range)
            entry[0] += writes
            if digest is not None:
                entry[2].append(digest)

    def written(self, key_range: KeyRange, digest: bytes | None = None) -> None:
        with self._lock:
            entry = self._open[key_range.index]
            entry[0] -= 1
            if digest is not None:
                entry[2].append(digest)
            finished = self._finished(key_range, entry)
        if finished is not None:
            self._on_finished(key_range, finished)

    def listed(self, key_range: KeyRange) -> None:
        with self._lock:
            entry = self._entry(key_range)
            entry[1] = True
            finished = self._finished(key_range, entry)
        if finished is not None:
            self._on_finished(key_range, finished)

    def _finished(self, key_range: KeyRange, entry: list[Any]) -> list[bytes] | None:
        if entry[0] or not entry[1]:
            return None
        del self._open[key_range.index]
        digests: list[bytes] = entry[2]
        return digests


def _late() -> StoredObject:
    raise StoreError(f"GetObject: no answer within {CALL_TIMEOUT_S:.0f} s")


class GetPool:
    """The bounded pool of image reads: ``workers`` threads doing the work, at most ``workers`` GETs in
    flight, the first failure kept (at most ``workers`` items between ``submit`` and the end of their
    work with ``start_get``; without it ``workers * 4``, of which the threads run ``workers``).

    ``submit_get`` starts the item's GET through ``start_get`` (the native client's ``get_soon``) when
    there is one: no thread waits on the GET; when it ends, its work goes to the threads through one
    queue. Without one, a thread does the GET itself (``store.get``). Why (issue 16): a thread blocked on
    each GET cost ~0.1 ms of CPU per item in hand-offs, a tenth of a restore's CPU."""

    def __init__(self, workers: int, stop: threading.Event, start_get: StartGet | None = None) -> None:
        self._start_get = start_get
        self._slots = threading.BoundedSemaphore(workers if start_get is not None else workers * 4)
        self._work: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.SimpleQueue()
        # GETs in flight (native): whoever takes one out of here (its end, or ``_cancel_late``) hands its work
        # on, under ``_handoff`` (a GET may end on the client's thread before it is registered here)
        self._pending: dict[int, tuple[InFlight, Callable[..., None], tuple[Any, ...]]] = {}
        self._handoff = threading.Lock()
        self._numbers = itertools.count()
        self._open = 0  # submitted and not yet finished
        self._count_lock = threading.Lock()
        self._failures: list[BaseException] = []
        self._stop = stop
        self._threads = [
            threading.Thread(target=self._serve, name=f"get-{n}", daemon=True) for n in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, work: Callable[..., None], *args: Any) -> bool:
        """Queue ``work(*args)``; False (nothing queued) once stopped."""
        if not self._take_slot():
            return False
        self._work.put((work, args))
        return True

    def submit_get(self, key: str, version_id: str, work: Callable[..., None], *args: Any) -> bool:
        """``work(fetched, *args)`` once the GET of ``key`` at ``version_id`` ended (``fetched()`` gives the
        object or raises as ``ObjectStore.get``), or ``work(None, *args)`` at once when there is no
        ``start_get`` (the work reads it); False (nothing queued) once stopped."""
        if not self._take_slot():
            return False
        if self._start_get is None:
            self._work.put((work, (None, *args)))  # the work reads it (a thread waits on the GET)
            return True
        number = next(self._numbers)

        def then(fetched: Fetched) -> None:  # on the client's event-loop thread
            with self._handoff:
                if self._pending.pop(number, None) is None:
                    ended.append(fetched)  # not registered yet (or cancelled as late: then nobody reads it)
                    return
            self._work.put((work, (fetched, *args)))

        ended: list[Fetched] = []
        try:
            started = self._start_get(key, version_id, then)
        except BaseException:
            self._finish()
            raise
        with self._handoff:
            if not ended:
                self._pending[number] = (started, work, args)
                return True
        self._work.put((work, (ended[0], *args)))  # it ended before make_request returned
        return True

    def _take_slot(self) -> bool:
        while not self._slots.acquire(timeout=0.1):
            self._cancel_late()
            if self._stop.is_set():
                return False
        with self._count_lock:
            self._open += 1
        return True

    def _finish(self) -> None:
        with self._count_lock:
            self._open -= 1
        self._slots.release()

    def _serve(self) -> None:
        while (job := self._work.get()) is not None:
            work, args = job
            try:
                work(*args)
            except BaseException as err:  # kept for raise_failure, as a future would keep it
                self._failures.append(err)
            finally:
                self._finish()

    def _cancel_late(self) -> None:
        """GETs in flight longer than the store's bound on one call are cancelled, and their work goes on
        now with a ``StoreError`` (it reads again): awscrt ends a cancelled request only once its
        connection answers or closes, which a stalled server may never do."""
        late = time.monotonic() - CALL_TIMEOUT_S
        for number, (pending, _, _) in list(self._pending.items()):
            if pending.started >= late:
                continue
            with self._handoff:
                taken = self._pending.pop(number, None)
            if taken is not None:
                pending.cancel()
                _, work, args = taken
                self._work.put((work, (_late, *args)))

    def raise_failure(self) -> None:
        if self._failures:
            raise self._failures[0]

    def wait(self, on_wait: Callable[[], None]) -> None:
        """Until every submitted item's work is done (or stopped), calling ``on_wait`` (progress) about 5
        times a second."""
        while self._open and not self._stop.is_set():
            time.sleep(WAIT_SECONDS)
            self._cancel_late()
            on_wait()
        self.close()
        for thread in self._threads:
            thread.join()  # work begun finishes (stopped: queued items return at once)

    def close(self) -> None:
        """The threads end once the work queued before this is done (an item stopped meanwhile returns
        at once: ``ItemFlow`` checks the stop flag)."""
        for _ in self._threads:
            self._work.put(None)
