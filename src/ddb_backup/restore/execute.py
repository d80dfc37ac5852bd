"""The restore executor: options checked first, then the plan streamed into writes.

``restore`` checks the target's key against the backup's, lists the backup's key ranges in parallel,
GETs each present item's image on a bounded pool, writes them with ``BatchWriter`` and marks a key
range finished in the checkpoint once all its items are written (or rejected: set aside in the
rejects file); ``items.ItemFlow`` moves the items. ``--sync`` then waits until every write is
acknowledged, records the sync phase in the checkpoint, and only then scans the target and deletes
the items whose key is not in the complete set of keys present at T. A set ``stop`` event ends the run
cleanly: no new write is sent, writes in flight finish, the checkpoint is saved and
``RestoreInterrupted`` is raised. A dry run lists and decides (metadata reads included) but reads
no image and writes nothing. Memory is bounded by the pools and queues, whatever the size of the
table; only ``--sync`` keeps a set of the keys present at T (16-byte digests, about 100 bytes per
item in a Python set).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ddb_backup.errors import BackupError
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import describe_table
from ddb_backup.restore.checkpoint import PHASE_SYNC, Checkpoint
from ddb_backup.restore.dry_run import plan_only
from ddb_backup.restore.items import ItemFlow
from ddb_backup.restore.options import (
    DEFAULT_WORKERS,
    LEGACY_WARNING,
    PlanLine,
    Progress,
    RestoreInterrupted,
    RestoreOptions,
    RestoreSummary,
    add_warnings,
    raise_if_stopped,
    validate,
)
from ddb_backup.restore.plan import PointInTime
from ddb_backup.restore.processes import write_pending
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.rejects import RejectsFile
from ddb_backup.restore.resolve import Resolver
from ddb_backup.restore.scope import restore_ranges
from ddb_backup.restore.sync import delete_absent
from ddb_backup.restore.target import Target, check_items_fit, prepare_target, source_schema
from ddb_backup.restore.worker import Connect
from ddb_backup.restore.writer import READ_RESUME_HINT, BatchWriter
from ddb_backup.store import ObjectStore, StoreError

__all__ = ["DEFAULT_WORKERS", "LEGACY_WARNING", "RestoreInterrupted", "RestoreOptions", "RestoreSummary", "restore"]
PROGRESS_EVERY_SECONDS = 0.2


def restore(
    options: RestoreOptions,
    store: ObjectStore,
    dynamodb: Any,
    *,
    progress: Progress | None = None,
    on_plan: PlanLine | None = None,
    now: Callable[[], float] = time.time,
    stop: threading.Event | None = None,
    connect: Connect | None = None,
) -> RestoreSummary:
    """Restore ``options.source`` at ``options.at`` into ``options.target``; returns the summary.

    ``connect`` makes another process's own clients (``worker.Connect``): with it, the writes spread over
    ``options.processes`` processes (0: two per core; ``restore.processes``); without it, one process.

    Raises ``UserError`` for what the user must change (nothing written), ``BackupError`` when AWS or
    S3 fail past retries and ``RestoreInterrupted`` once ``stop`` is set; after the last two the
    checkpoint is saved and ``resume=True`` continues. Items the target refuses are counted in
    ``summary.rejected`` and written to ``options.rejects_path`` (README, "Restore exit codes").
    """
    validate(options, now())
    return _Restore(options, store, dynamodb, progress, on_plan, stop or threading.Event(), connect).run()


class _Restore:
    def __init__(
        self,
        options: RestoreOptions,
        store: ObjectStore,
        dynamodb: Any,
        progress: Progress | None,
        on_plan: PlanLine | None,
        stop: threading.Event,
        connect: Connect | None,
    ) -> None:
        self.options, self.store, self.dynamodb, self.connect = options, store, dynamodb, connect
        self.progress, self.on_plan, self.stop = progress, on_plan, stop
        self.summary = RestoreSummary(dry_run=options.dry_run)
        self.when = PointInTime(options.at, options.max_lag)
        self.items = ItemFlow(options, store, dynamodb, self.summary, stop, self._show)
        self._shown = 0.0
        self.remote = RestoreSummary()  # what worker processes wrote (acknowledged puts, retries)

    @property
    def resolver(self) -> Resolver | None:
        return self.items.resolver

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> RestoreSummary:
        started = time.monotonic()
        options = self.options
        checkpoint = (
            Checkpoint.resume(options.checkpoint_path, options.query(), at_relative=options.at_relative)
            if options.resume and not options.dry_run
            else None
        )
        if not options.resume and not options.dry_run:
            Checkpoint.refuse_existing(options.checkpoint_path)
        if checkpoint is not None and checkpoint.query.at != options.at:
            self.options = options = replace(options, at=checkpoint.query.at)
            self.when = PointInTime(options.at, options.max_lag)
            self.items.options, self.items.when = options, self.when
        schema = source_schema(self.store, self.dynamodb, options.prefix, options.source)
        from_source = schema is not None  # else the backup's own items say what its key is
        schema = schema or describe_table(self.dynamodb, options.target)
        target = prepare_target(
            self.dynamodb,
            options.target,
            schema,
            overwrite=options.overwrite,
            # a dry run of a resume (the plan behind a confirmation) finds the table partly restored
            resuming=options.resume and (checkpoint is not None or options.dry_run),
            dry_run=options.dry_run,
        )
        self.summary.target_created = target.created
        self.items.key_types = target.key_types
        self.items.resolver = Resolver(
            self.store,
            options.prefix,
            options.source,
            target.key_schema,
            keyless_as_reject=True,
            tenancy=options.tenancy,
        )
        if not from_source:
            folder = k.table_prefix(options.prefix, options.source, options.tenant_segment)
            check_items_fit(self.store, folder, target)
        scheme = checkpoint.scheme if checkpoint is not None else options.scheme
        ranges, scheme = restore_ranges(self.store, options, target.key_schema, scheme)
        if checkpoint is None and not options.dry_run:
            checkpoint = Checkpoint.start(options.checkpoint_path, options.query(), scheme)
        if options.dry_run:
            self._plan_only(ranges, target)
        else:
            assert checkpoint is not None
            self._write(ranges, target, checkpoint)
        self.summary.seconds = time.monotonic() - started
        add_warnings(self.summary, options.at, self.resolver.skips.lines() if self.resolver else [])
        if checkpoint is not None:
            checkpoint.remove()
        self._show(force=True)
        return self.summary

    # -- dry run ----------------------------------------------------------------------------------

    def _plan_only(self, ranges: list[KeyRange], target: Target) -> None:
        self.summary.ranges = len(ranges)
        present = plan_only(self.items, ranges, self.on_plan, self._show)
        if self.options.sync and target.exists:
            self._sync(target, None, present)

    # -- writing ----------------------------------------------------------------------------------

    def _write(self, ranges: list[KeyRange], target: Target, checkpoint: Checkpoint) -> None:
        pending = [r for r in ranges if r.index not in checkpoint.finished]
        self.summary.ranges = len(ranges)
        self.summary.ranges_already_done = len(ranges) - len(pending)
        rejects = RejectsFile(self.options.rejects_path, at=self.options.at)
        writer = self.items.writer(target, rejects.add)
        try:
            if checkpoint.phase != PHASE_SYNC:
                self.remote = write_pending(
                    self.items, pending, target, writer, checkpoint, rejects, self.connect, self._show
                )
                raise_if_stopped(self.stop)
                checkpoint.require_finished(r.index for r in pending)
            if self.options.sync:
                checkpoint.enter_phase(PHASE_SYNC)  # a crash from here on resumes with the deletes
                self._sync(target, writer, checkpoint.present_digests())
            writer.close()
            raise_if_stopped(self.stop)
        except StoreError as err:
            writer.abort()
            raise BackupError(str(err), READ_RESUME_HINT) from err
        except BaseException as err:
            writer.abort(wait_for_sent=not isinstance(err, KeyboardInterrupt))
            raise
        finally:
            self.items.collect(writer, rejects)
            for name in ("puts", "retries", "throttled"):
                setattr(self.summary, name, getattr(self.summary, name) + getattr(self.remote, name))
            checkpoint.save_if_changed()

    def _show(self, writer: BatchWriter | None = None, *, force: bool = False) -> None:
        if self.progress is None:
            return
        moment = time.monotonic()
        if not force and moment - self._shown < PROGRESS_EVERY_SECONDS:
            return
        self._shown = moment
        if writer is not None:
            self.summary.puts = writer.stats.puts + self.remote.puts
            self.summary.deletes = writer.stats.deletes
        self.progress(self.summary)

    def _sync(self, target: Target, writer: BatchWriter | None, present: set[bytes]) -> None:
        """Delete the target's items absent at T (a dry run counts them: ``sync.delete_absent``)."""
        show = lambda: self._show(writer)  # noqa: E731
        delete_absent(self.options.keys, self.dynamodb, target, writer, present, self.stop, show, self.summary)
