"""One restore worker process: its share of the key ranges, with clients of its own.

The parent (``restore.processes``) owns the checkpoint, the rejects file, the progress bar and the
summary; a worker tells it, through one queue, each range it finished (with the range's present-item
digests for ``--sync``), each item the target refused, its counts now and then, and how it ended.
Ctrl-C reaches every process of the terminal's group: a worker ignores it and stops when the parent
sets the shared stop flag (or when the parent is gone), as the in-process restore stops: no new write,
the writes in flight finish, and only ranges whose every item was written are reported finished.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ddb_backup.errors import HintedError
from ddb_backup.restore.items import ItemFlow
from ddb_backup.restore.options import RestoreOptions, RestoreSummary
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.resolve import Resolver
from ddb_backup.restore.target import Target
from ddb_backup.restore.writer import READ_RESUME_HINT, BatchWriter
from ddb_backup.store import ObjectStore, StoreError

GC_THRESHOLDS = (50_000, 20, 20)  # allocations between young collections; young runs per older one
REPORT_EVERY_SECONDS = 0.2
WATCH_EVERY_SECONDS = 0.1
FINISHED, REJECTED, COUNTS, FAILED, DONE = "finished", "rejected", "counts", "failed", "done"
COUNTED = ("items", "skipped", "metadata_reads", "image_reads", "puts", "retries", "throttled")


class Connect(Protocol):
    """Makes a process's own clients: ``(store, dynamodb)``. Picklable (it crosses to the worker)."""

    def __call__(self) -> tuple[ObjectStore, Any]: ...


@dataclass(frozen=True)
class Job:
    """One worker's share: everything it needs, picklable."""

    number: int
    options: RestoreOptions
    connect: Connect
    target: Target
    ranges: list[KeyRange]
    parent: int  # the parent's pid: a worker whose parent is gone stops


def counts_of(summary: RestoreSummary, writer: BatchWriter | None) -> dict[str, Any]:
    """The worker's counts so far (puts as acknowledged by DynamoDB, not as planned)."""
    counts: dict[str, Any] = {name: getattr(summary, name) for name in COUNTED}
    if writer is not None:
        stats = writer.stats
        counts.update(puts=stats.puts, retries=stats.retries, throttled=stats.throttled)
    counts.update(legacy=summary.legacy, earliest=summary.earliest)
    return counts


def run_worker(job: Job, events: Any, stop_flag: Any) -> None:
    """The worker process's body (``multiprocessing`` target): never raises; ends with a ``done`` event."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    stop = threading.Event()
    threading.Thread(target=_watch, args=(stop, stop_flag, job.parent), daemon=True).start()
    summary = RestoreSummary()
    writer: BatchWriter | None = None
    resolver: Resolver | None = None
    try:
        store, dynamodb = job.connect()
        quiet_collector()
        flow = ItemFlow(job.options, store, dynamodb, summary, stop, _reporter(job, events, summary))
        flow.key_types = job.target.key_types
        options = job.options
        flow.resolver = resolver = Resolver(
            store,
            options.prefix,
            options.source,
            job.target.key_schema,
            keyless_as_reject=True,
            tenancy=options.tenancy,
        )
        writer = flow.writer(job.target, lambda kind, item, reason: events.put((REJECTED, kind, dict(item), reason)))
        flow.write_ranges(job.ranges, writer, lambda index, digests: events.put((FINISHED, index, digests)))
        writer.drain(lambda: None)  # every write acknowledged: every finished range reported
        writer.close()
    except BaseException as err:  # reported to the parent, which ends the restore as the in-process one does
        if writer is not None:
            writer.abort(wait_for_sent=not isinstance(err, KeyboardInterrupt))
        hint = err.hint if isinstance(err, HintedError) else READ_RESUME_HINT if isinstance(err, StoreError) else ""
        events.put((FAILED, type(err).__name__, str(err) or type(err).__name__, hint))
    finally:
        skipped = resolver.skips.as_dict() if resolver is not None else {}
        events.put((DONE, job.number, counts_of(summary, writer), skipped))


def quiet_collector() -> None:
    """Fewer cyclic garbage collections in a worker process: what it has imported and built so far is
    frozen out of them, and the young generation is collected after 50,000 allocations, not 700. A
    restore allocates and frees a few hundred objects per item, nearly none in cycles; with Python's
    defaults the collector took 6-9% of a worker's CPU (issue 16, a perf profile of the workers)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _reporter(job: Job, events: Any, summary: RestoreSummary) -> Callable[[BatchWriter | None], None]:
    shown = [0.0]

    def show(writer: BatchWriter | None) -> None:
        moment = time.monotonic()
        if moment - shown[0] >= REPORT_EVERY_SECONDS:
            shown[0] = moment
            events.put((COUNTS, job.number, counts_of(summary, writer)))

    return show


def _watch(stop: threading.Event, stop_flag: Any, parent: int) -> None:
    while not stop.is_set():
        if stop_flag.is_set() or os.getppid() != parent:
            stop.set()
            return
        time.sleep(WATCH_EVERY_SECONDS)


def merge_counts(summary: RestoreSummary, counts: Mapping[str, Any]) -> None:
    """Add one worker's final or latest ``counts`` into ``summary``."""
    for name in COUNTED:
        setattr(summary, name, getattr(summary, name) + counts[name])
    summary.legacy = summary.legacy or counts["legacy"]
    if counts["earliest"] is not None:
        summary.earliest = min(counts["earliest"], summary.earliest or counts["earliest"])
