"""A table's state at T, item by item: the planner run over key ranges in parallel, and item images.

This is what restore, export, diff and verify read the backup through.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ddb_backup.format.keys import TypedItem
from ddb_backup.restore.plan import PointInTime, plan_range
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.timeline import ItemState
from ddb_backup.store import ObjectStore

DEFAULT_LIST_WORKERS = 8
_DONE = object()
S = TypeVar("S")
T = TypeVar("T")


def iter_states(
    store: ObjectStore,
    ranges: Sequence[KeyRange],
    when: PointInTime,
    *,
    workers: int = DEFAULT_LIST_WORKERS,
    wanted: Callable[[str], bool] | None = None,
    buffer: int = 2000,
) -> Iterator[tuple[KeyRange, ItemState | None]]:
    """Every item's state, ranges listed ``workers`` at a time. Items of one range come in key order;
    after a range's last item, ``(range, None)`` says the range is finished (for checkpoints)."""
    return map_ranges(ranges, lambda key_range: plan_range(store, key_range, when, wanted=wanted), workers, buffer)


def map_ranges(
    ranges: Sequence[S],
    work: Callable[[S], Iterable[T]],
    workers: int = DEFAULT_LIST_WORKERS,
    buffer: int = 2000,
) -> Iterator[tuple[S, T | None]]:
    """``work(range)`` for every range (or scan segment), ``workers`` at a time, results through a
    bounded queue as they come; ``(range, None)`` after a range's last result. Failures re-raise."""
    results: queue.Queue[Any] = queue.Queue(maxsize=buffer)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def run(key_range: S) -> None:
        for result in work(key_range):
            if stop.is_set():
                return
            put((key_range, result))
        put((key_range, None))

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="list")
    futures = [pool.submit(run, key_range) for key_range in ranges]

    def finish() -> None:
        pool.shutdown(wait=True)
        put(_DONE)

    threading.Thread(target=finish, daemon=True).start()
    try:
        while (item := results.get()) is not _DONE:
            yield item
        for future in futures:
            future.result()  # re-raise a failure
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)


def read_image(store: ObjectStore, state: ItemState) -> TypedItem | None:
    """The item's image (DynamoDB JSON) at T, or None when it was absent."""
    if state.version is None:
        return None
    body = store.get(state.object_key, state.version.version_id).body
    image: TypedItem = json.loads(body)
    return image
