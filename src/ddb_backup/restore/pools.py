"""The executor's bookkeeping: which key ranges are finished (for checkpoints), and the bounded pool of
image reads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from ddb_backup.restore.ranges import KeyRange


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


class GetPool:
    """The bounded pool of image GETs: at most ``workers * 4`` queued, the first failure kept."""

    def __init__(self, workers: int, stop: threading.Event) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="get")
        self._slots = threading.BoundedSemaphore(workers * 4)
        self._most = workers * 16
        self._futures: set[Future[None]] = set()
        self._failures: list[BaseException] = []
        self._stop = stop

    def submit(self, work: Callable[..., None], *args: Any) -> bool:
        """Queue one GET; False (nothing queued) once stopped."""
        while not self._slots.acquire(timeout=0.1):
            if self._stop.is_set():
                return False
        future = self._pool.submit(work, *args)
        if len(self._futures) > self._most:  # keep the set bounded: only a few are not done
            self._futures = {f for f in self._futures if not f.done()}
        self._futures.add(future)
        future.add_done_callback(self._finished)
        return True

    def _finished(self, future: Future[None]) -> None:
        self._slots.release()
        if not future.cancelled() and future.exception() is not None:
            self._failures.append(future.exception())  # type: ignore[arg-type]

    def raise_failure(self) -> None:
        if self._failures:
            raise self._failures[0]

    def wait(self, on_wait: Callable[[], None]) -> None:
        """Until every GET is done (or stopped), calling ``on_wait`` (progress) about 5 times a second."""
        while self._futures and not self._stop.is_set():
            _, pending = wait(self._futures, timeout=0.2)
            self._futures = set(pending)
            on_wait()
        self._pool.shutdown(wait=True, cancel_futures=self._stop.is_set())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
