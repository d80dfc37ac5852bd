"""Restore over several processes: the key ranges spread over worker processes (``restore.worker``),
each with its own clients, so a restore uses every core (one Python process tops out at one).

The parent keeps what must be one: the checkpoint (it marks the ranges the workers report finished),
the rejects file, the progress bar and the summary, and the decision to stop. Workers start by
``spawn`` (never ``fork``: the parent's client threads and sockets must not be copied), take every
``n``-th pending range, and split ``--write-rate`` evenly. ``--sync``'s deletes run in the parent once
every worker has ended and every range is finished, as in one process.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from ddb_backup.errors import BackupError, UserError
from ddb_backup.restore.checkpoint import Checkpoint
from ddb_backup.restore.items import ItemFlow
from ddb_backup.restore.options import RestoreOptions, RestoreSummary
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.rejects import RejectsFile
from ddb_backup.restore.resolve import Skips
from ddb_backup.restore.target import Target
from ddb_backup.restore.worker import COUNTS, DONE, FAILED, FINISHED, REJECTED, Connect, Job, merge_counts, run_worker
from ddb_backup.restore.writer import RESUME_HINT, BatchWriter
from ddb_backup.store import StoreUnreachable

POLL_SECONDS = 0.2
RANGES_PER_PROCESS = 8
PROCESSES_PER_CORE = 2
JOIN_SECONDS = 30.0
SHOWN = ("items", "skipped", "metadata_reads", "image_reads", "legacy", "earliest")


def process_count(options: RestoreOptions, pending: int, connect: Connect | None) -> int:
    """How many processes write: ``--processes`` (0: ``PROCESSES_PER_CORE`` per core this process may run
    on), at most one per ``RANGES_PER_PROCESS`` pending ranges (starting a process costs about a second: a
    few ``--key`` items or the last ranges of a resume are not worth it); one without a way to make
    clients in another process (``connect``), and for a dry run.

    Why two per core: one process's threads share one interpreter lock, and its hand-offs between
    listing, GET, writer and the native client's event-loop threads left a process using about 0.7 of a
    core (issue 16: 2 processes used 1.40 of 2 cores, 4 used 1.60 and restored 10-20% more items/s)."""
    if connect is None or options.dry_run:
        return 1
    wanted = options.processes or PROCESSES_PER_CORE * usable_cores()
    return max(1, min(wanted, pending // RANGES_PER_PROCESS))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container or ``taskset`` limits it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def write_pending(
    items: ItemFlow,
    pending: list[KeyRange],
    target: Target,
    writer: BatchWriter,
    checkpoint: Checkpoint,
    rejects: RejectsFile,
    connect: Connect | None,
    show: Callable[[BatchWriter | None], None],
) -> RestoreSummary:
    """The pending ranges written, over worker processes when ``process_count`` says more than one (else
    in this process, through ``writer``, every write acknowledged); returns what the workers wrote."""
    count = process_count(items.options, len(pending), connect)
    if count <= 1 or connect is None:
        items.write_ranges(pending, writer, checkpoint.finish_range)
        writer.drain(lambda: show(writer))  # every write acknowledged: all done callbacks ran
        return RestoreSummary()
    items.summary.processes = count
    skips = items.resolver.skips if items.resolver is not None else None
    shown = items.summary
    fan_out = FanOut(items.options, connect, target, checkpoint, rejects, items.stop, shown, lambda: show(None), skips)
    return fan_out.run(pending, count)


class FanOut:
    """One write phase over ``count`` worker processes; ``run`` returns the workers' totals."""

    def __init__(
        self,
        options: RestoreOptions,
        connect: Connect,
        target: Target,
        checkpoint: Checkpoint,
        rejects: RejectsFile,
        stop: threading.Event,
        shown: RestoreSummary,
        show: Callable[[], None],
        skips: Skips | None,
    ) -> None:
        self.options, self.connect, self.target = options, connect, target
        self.checkpoint, self.rejects, self.stop = checkpoint, rejects, stop
        self.shown, self.show, self.skips = shown, show, skips
        self.latest: dict[int, dict[str, Any]] = {}
        self.ended: set[int] = set()
        self.failure: tuple[str, str, str] | None = None

    def run(self, pending: list[KeyRange], count: int) -> RestoreSummary:
        context = multiprocessing.get_context("spawn")
        events, flag = context.Queue(), context.Event()
        rate = self.options.write_rate
        options = replace(self.options, write_rate=rate / count if rate else None)
        jobs = [Job(n, options, self.connect, self.target, pending[n::count], os.getpid()) for n in range(count)]
        workers = [
            context.Process(target=run_worker, args=(job, events, flag), name=f"restore-{job.number}", daemon=True)
            for job in jobs
        ]
        try:
            with _ctrl_c_not_inherited():
                for worker in workers:
                    worker.start()
            self._follow(events, flag, workers)
        finally:
            flag.set()  # a failure here (or in the parent) ends the workers too
            for worker in workers:
                worker.join(JOIN_SECONDS)
                if worker.is_alive():
                    worker.terminate()
        self._raise_failure()
        return self._totals()

    def _follow(self, events: Any, flag: Any, workers: list[Any]) -> None:
        silent: dict[int, int] = {}
        while len(self.ended) < len(workers):
            if self.stop.is_set():
                flag.set()
            try:
                event = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                self._notice_lost(workers, silent, flag)
                self.show()
                continue
            self._handle(event, flag)

    def _handle(self, event: tuple[Any, ...], flag: Any) -> None:
        kind = event[0]
        if kind == FINISHED:
            self.checkpoint.finish_range(event[1], event[2])
        elif kind == REJECTED:
            self.rejects.add(event[1], event[2], event[3])
        elif kind == COUNTS:
            self.latest[event[1]] = event[2]
            self._update_shown()
        elif kind == FAILED:
            self.failure = self.failure or (event[1], event[2], event[3])
            flag.set()
        elif kind == DONE:
            self.latest[event[1]] = event[2]
            self.ended.add(event[1])
            if self.skips is not None:
                self.skips.merge(event[3])
            self._update_shown()

    def _notice_lost(self, workers: list[Any], silent: dict[int, int], flag: Any) -> None:
        """A worker that exited without its ``done`` (killed; a Ctrl-C before it could ignore one): after
        two quiet polls (its last events had time to arrive), it is a failure, unless stopping anyway."""
        for number, worker in enumerate(workers):
            if number in self.ended or worker.exitcode is None:
                continue
            silent[number] = silent.get(number, 0) + 1
            if silent[number] >= 2:
                self.ended.add(number)
                if not self.stop.is_set():
                    what = f"restore worker process {number} ended unexpectedly (exit code {worker.exitcode})"
                    self.failure = self.failure or ("BackupError", what, RESUME_HINT)
                flag.set()

    def _totals(self) -> RestoreSummary:
        totals = RestoreSummary()
        for counts in self.latest.values():
            merge_counts(totals, counts)
        return totals

    def _update_shown(self) -> None:
        totals = self._totals()
        for name in SHOWN:
            setattr(self.shown, name, getattr(totals, name))
        self.shown.puts = totals.puts
        self.show()

    def _raise_failure(self) -> None:
        if self.failure is None:
            return
        kind, message, hint = self.failure
        if kind == "UserError":
            raise UserError(message, hint)
        if kind == "KeyboardInterrupt" and self.stop.is_set():
            return
        failure = BackupError(message, hint or RESUME_HINT)
        if kind == StoreUnreachable.__name__:  # the command says it cannot connect, as in one process
            raise failure from StoreUnreachable(message)
        raise failure


@contextmanager
def _ctrl_c_not_inherited() -> Iterator[None]:
    """Start workers with Ctrl-C ignored (an ignored signal stays ignored in the new interpreter), so a
    press while one starts cannot kill it before it ignores Ctrl-C itself."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
