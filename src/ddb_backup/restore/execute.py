"""The restore executor: options checked first, then the plan streamed into writes.

``restore`` checks the target's key against the backup's, lists the backup's key ranges in parallel
(``state.iter_states``), GETs each present item's image on a bounded pool, writes them with
``BatchWriter`` and marks a key range finished in the checkpoint once all its items are written (or
rejected: set aside in the rejects file). ``--sync`` then waits until every write is acknowledged,
records the sync phase in the checkpoint, and only then scans the target and deletes the items
whose key is not in the complete set of keys present at T. A set ``stop`` event ends the run
cleanly: no new write is sent, writes in flight finish, the checkpoint is saved and
``RestoreInterrupted`` is raised. A dry run lists and decides (metadata reads included) but reads
no image and writes nothing. Memory is bounded by the pools and queues, whatever the size of the
table; only ``--sync`` keeps a set of the keys present at T (16-byte digests, about 100 bytes per
item in a Python set).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ddb_backup.aws.ratelimit import TokenBucket
from ddb_backup.errors import BackupError, HintedError, UserError
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import describe_table
from ddb_backup.format.version_meta import Tenancy, epoch_to_iso
from ddb_backup.restore.checkpoint import PHASE_SYNC, Checkpoint, Query, default_path
from ddb_backup.restore.locate import candidate_object_keys, find_object_keys
from ddb_backup.restore.plan import PointInTime, folder_ranges, table_folders
from ddb_backup.restore.ranges import KeyRange, segment_ranges
from ddb_backup.restore.read_once import Planned, plan_range_once
from ddb_backup.restore.rejects import RejectsFile, default_rejects_path
from ddb_backup.restore.resolve import REJECT, TAKE, Resolver
from ddb_backup.restore.state import iter_states, map_ranges
from ddb_backup.restore.target import Target, check_items_fit, image_key_problem, prepare_target, source_schema
from ddb_backup.restore.timeline import DEFAULT_MAX_LAG, ItemState
from ddb_backup.restore.writer import DEFAULT_MAX_RETRY_SECONDS, MAX_BATCH, RESUME_HINT, BatchWriter, key_of
from ddb_backup.store import ObjectStore, StoreError

DEFAULT_WORKERS = 64
FUTURE_SLACK_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 0.2
LEGACY_WARNING = "restored by LastModified (versions written by the original tool)"


@dataclass(frozen=True)
class RestoreOptions:
    """One restore, as the command line gives it (``at`` already in epoch seconds)."""

    bucket: str
    source: str
    target: str
    at: float
    prefix: str = ""
    at_relative: bool = False  # written relative to now: a resume keeps the checkpoint's absolute time
    tenant: str | None = None  # the tenant value as written; "%none": items without one
    keys: tuple[str, ...] = ()  # key_json of each item to restore (all items when empty)
    overwrite: bool = False
    sync: bool = False
    dry_run: bool = False
    write_rate: float | None = None
    workers: int = DEFAULT_WORKERS
    resume: bool = False
    segment: int = 0
    total_segments: int = 1
    max_lag: float = DEFAULT_MAX_LAG
    checkpoint: Path | None = None
    allow_same_table: bool = False
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    batch_size: int = MAX_BATCH  # requests per BatchWriteItem (smaller only in tests)
    scheme: str | None = None  # how to cut the table into key ranges (plan.WHOLE/MD5/TEXT); None: chosen
    rejects: Path | None = None  # where items the target refuses go (default: next to the checkpoint)
    tenancy: Tenancy | None = None  # --tenant-column/--no-tenants: the table's tenant attribute (tenancy.py)

    @property
    def tenant_segment(self) -> str | None:
        if self.tenant is None:
            return None
        return k.tenant_segment_for_text(self.tenant)  # escaped, hashed when long; "%none" stays

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or default_path(self.target, self.segment, self.total_segments)

    @property
    def rejects_path(self) -> Path:
        return self.rejects or default_rejects_path(self.checkpoint_path)

    def query(self) -> Query:
        return Query(
            bucket=self.bucket,
            prefix=self.prefix,
            source=self.source,
            target=self.target,
            at=self.at,
            tenant=self.tenant,
            keys=tuple(self.keys),
            segment=self.segment,
            total_segments=self.total_segments,
            sync=self.sync,
            max_lag=self.max_lag,
        )


@dataclass
class RestoreSummary:
    """What a restore did (or, in a dry run, would do)."""

    items: int = 0  # items of the backup looked at
    puts: int = 0  # present at T: written (dry run: would be)
    deletes: int = 0  # target items absent at T, deleted by --sync
    skipped: int = 0  # absent at T: nothing to write
    metadata_reads: int = 0
    image_reads: int = 0
    ranges: int = 0
    ranges_already_done: int = 0
    retries: int = 0
    throttled: int = 0
    rejected: int = 0  # items the target refused, set aside in ``rejects_path``
    rejects_path: Path | None = None
    seconds: float = 0.0
    legacy: bool = False
    earliest: float | None = None  # oldest S3 write time seen
    target_created: bool = False
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verb = "would put" if self.dry_run else "put"
        rate = f" ({self.puts / self.seconds:.0f} items/s)" if self.seconds > 0 and not self.dry_run else ""
        return [
            f"items looked at: {self.items}",
            f"{verb}: {self.puts}{rate}",
            f"{'would delete' if self.dry_run else 'deleted'}: {self.deletes}",
            f"skipped (absent at TIME): {self.skipped}",
            *([f"rejected by the target: {self.rejected} (in {self.rejects_path})"] if self.rejected else []),
            f"metadata reads: {self.metadata_reads}",
            f"ranges: {self.ranges} ({self.ranges_already_done} done before this run)",
            f"seconds: {self.seconds:.1f}",
        ]


class RestoreInterrupted(HintedError):
    """The run was stopped (``stop`` set, e.g. by Ctrl-C): writes in flight finished, checkpoint saved."""

    exit_code = 130


Progress = Callable[[RestoreSummary], None]
PlanLine = Callable[[ItemState], None]


def validate(options: RestoreOptions, now: float) -> None:
    """Refuse what cannot work before touching anything."""
    if options.at > now + FUTURE_SLACK_SECONDS:
        raise UserError(f"TIME {epoch_to_iso(options.at)} is in the future", "restore to a time in the past")
    if options.total_segments < 1 or not 0 <= options.segment < options.total_segments:
        raise UserError(
            f"--segment {options.segment} is not in 0..{options.total_segments - 1}",
            "give --segment I --total-segments N with 0 <= I < N",
        )
    if options.sync and not options.overwrite:
        raise UserError("--sync deletes items from the target, so it needs --overwrite", "add --overwrite")
    if options.sync and options.tenant is not None and not options.keys:
        raise UserError(
            "--sync with --tenant would delete the other tenants' items from the target",
            "restore the tenant into a table of its own without --sync",
        )
    if options.sync and options.total_segments > 1 and not options.keys:
        raise UserError("--sync works on the whole table, not on a segment", "run --sync without --segment")
    if options.target == options.source and not options.allow_same_table:
        raise UserError(
            f"the target is the source table {options.source!r}",
            "restore into a new table, or add --allow-same-table to overwrite the source on purpose",
        )
    if options.write_rate is not None and options.write_rate <= 0:
        raise UserError("--write-rate must be a positive number of write units per second", "e.g. --write-rate 500")
    if options.workers < 1:
        raise UserError("--workers must be at least 1", "e.g. --workers 32")


def restore(
    options: RestoreOptions,
    store: ObjectStore,
    dynamodb: Any,
    *,
    progress: Progress | None = None,
    on_plan: PlanLine | None = None,
    now: Callable[[], float] = time.time,
    stop: threading.Event | None = None,
) -> RestoreSummary:
    """Restore ``options.source`` at ``options.at`` into ``options.target``; returns the summary.

    Raises ``UserError`` for what the user must change (nothing written), ``BackupError`` when AWS or
    S3 fail past retries and ``RestoreInterrupted`` once ``stop`` is set; after the last two the
    checkpoint is saved and ``resume=True`` continues. Items the target refuses are counted in
    ``summary.rejected`` and written to ``options.rejects_path`` (README, "Restore exit codes").
    """
    validate(options, now())
    return _Restore(options, store, dynamodb, progress, on_plan, stop or threading.Event()).run()


class _Tracker:
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


class _Gets:
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


def name_digest(object_key: str) -> bytes:
    """16 bytes standing for an item's object name (the last path segment: tenants do not matter)."""
    return hashlib.md5(object_key.rsplit("/", 1)[-1].encode("utf-8"), usedforsecurity=False).digest()


def key_name_digests(key: dict[str, Any], schema: k.KeySchema) -> list[bytes]:
    """The digests an item present at T would have, under any naming (dry runs: no image read)."""
    names = k.object_names_of(key, schema)  # every naming, fallbacks and format 1's included
    return [hashlib.md5(name.encode("utf-8"), usedforsecurity=False).digest() for name in names]


def key_digest(key: Mapping[str, Any]) -> bytes:
    """16 bytes standing for an item's key (its canonical ``key_json``), whatever named its object."""
    return hashlib.md5(k.key_json(key).encode("utf-8"), usedforsecurity=False).digest()


class _Restore:
    def __init__(
        self,
        options: RestoreOptions,
        store: ObjectStore,
        dynamodb: Any,
        progress: Progress | None,
        on_plan: PlanLine | None,
        stop: threading.Event,
    ) -> None:
        self.options, self.store, self.dynamodb = options, store, dynamodb
        self.progress, self.on_plan, self.stop = progress, on_plan, stop
        self.summary = RestoreSummary(dry_run=options.dry_run)
        self.when = PointInTime(options.at, options.max_lag)
        self._lock = threading.Lock()
        self._shown = 0.0
        self._dry_present: set[bytes] = set()
        self.key_types: Mapping[str, str] = {}  # the target's key attributes' types (S, N, B)
        self.resolver: Resolver | None = None  # set once the key schema is known

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
        schema = source_schema(self.store, self.dynamodb, options.prefix, options.source)
        from_source = schema is not None  # else the backup's own items say what its key is
        schema = schema or describe_table(self.dynamodb, options.target)
        target = prepare_target(
            self.dynamodb,
            options.target,
            schema,
            overwrite=options.overwrite,
            resuming=checkpoint is not None and options.resume,
            dry_run=options.dry_run,
        )
        self.summary.target_created = target.created
        self.key_types = target.key_types
        self.resolver = Resolver(
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
        ranges, scheme = self._ranges(target.key_schema, checkpoint)
        if checkpoint is None and not options.dry_run:
            checkpoint = Checkpoint.start(options.checkpoint_path, options.query(), scheme)
        if options.dry_run:
            self._plan_only(ranges, target)
        else:
            assert checkpoint is not None
            self._write(ranges, target, checkpoint)
        self.summary.seconds = time.monotonic() - started
        self._warnings()
        if checkpoint is not None:
            checkpoint.remove()
        self._show(force=True)
        return self.summary

    def _ranges(self, schema: k.KeySchema, checkpoint: Checkpoint | None) -> tuple[list[KeyRange], str | None]:
        options = self.options
        if options.keys:
            return self._key_ranges(schema), None
        folders = table_folders(self.store, options.prefix, options.source, options.tenant_segment)
        scheme = checkpoint.scheme if checkpoint is not None else options.scheme
        all_ranges, scheme = folder_ranges(self.store, folders, scheme, allow_whole=options.total_segments == 1)
        ranges = segment_ranges(all_ranges, options.segment, options.total_segments)
        return ranges, scheme

    def _key_ranges(self, schema: k.KeySchema) -> list[KeyRange]:
        """One range per object holding a ``--key`` (every name any writer gives it: ``aliases``)."""
        ranges: list[KeyRange] = []
        for key_text in self.options.keys:
            key = json.loads(key_text)
            candidates = candidate_object_keys(
                self.options.prefix, self.options.source, key, tenant=self.options.tenant_segment, schema=schema
            )
            for object_key in find_object_keys(self.store, candidates) or candidates[:1]:
                ranges.append(KeyRange(len(ranges), object_key, None, object_key))
        return ranges

    # -- dry run ----------------------------------------------------------------------------------

    def _plan_only(self, ranges: list[KeyRange], target: Target) -> None:
        self.summary.ranges = len(ranges)
        for _, state in iter_states(self.store, ranges, self.when, workers=self._list_workers()):
            if state is None:
                continue
            self._count(state)
            if state.present:
                if self.options.sync:
                    self._dry_present.add(name_digest(state.object_key))
                if self.on_plan is not None:
                    self.on_plan(state)
            self._show()
        if self.options.sync and target.exists:
            self._sync(target, None, self._dry_present)

    def _count(self, state: ItemState) -> None:
        with self._lock:
            summary = self.summary
            summary.items += 1
            summary.metadata_reads += state.metadata_reads
            summary.legacy = summary.legacy or state.legacy
            if state.earliest is not None:
                summary.earliest = min(state.earliest, summary.earliest or state.earliest)
            if state.present:
                summary.puts += 1
            else:
                summary.skipped += 1
        if not state.present and self.resolver is not None:
            self.resolver.note_absent(state)  # an empty stray is reported as one (docs/format.md)

    # -- writing ----------------------------------------------------------------------------------

    def _list_workers(self) -> int:
        return self.options.workers  # listing threads also HEAD the versions S3's clock cannot decide

    def _writer(self, target: Target, rejects: RejectsFile) -> BatchWriter:
        return BatchWriter(
            self.dynamodb,
            target.name,
            target.key_schema,
            workers=max(2, self.options.workers // 4),
            batch_size=self.options.batch_size,
            limiter=TokenBucket(self.options.write_rate) if self.options.write_rate else None,
            max_retry_seconds=self.options.max_retry_seconds,
            on_reject=rejects.add,
            stop=self.stop,
        )

    def _write(self, ranges: list[KeyRange], target: Target, checkpoint: Checkpoint) -> None:
        pending = [r for r in ranges if r.index not in checkpoint.finished]
        self.summary.ranges = len(ranges)
        self.summary.ranges_already_done = len(ranges) - len(pending)
        rejects = RejectsFile(self.options.rejects_path, at=self.options.at)
        writer = self._writer(target, rejects)
        try:
            if checkpoint.phase != PHASE_SYNC:
                self._write_ranges(pending, writer, checkpoint)
                writer.drain(lambda: self._show(writer))  # every write acknowledged: all done callbacks ran
                self._raise_if_stopped()
                self._check_all_finished(pending, checkpoint)
            if self.options.sync:
                checkpoint.enter_phase(PHASE_SYNC)  # a crash from here on resumes with the deletes
                self._sync(target, writer, checkpoint.present_digests())
            writer.close()
            self._raise_if_stopped()
        except StoreError as err:
            writer.abort()
            raise BackupError(str(err), RESUME_HINT) from err
        except BaseException:
            writer.abort()
            raise
        finally:
            self._collect(writer, rejects)
            checkpoint.save_if_changed()

    def _check_all_finished(self, ranges: list[KeyRange], checkpoint: Checkpoint) -> None:
        unfinished = [r.index for r in ranges if r.index not in checkpoint.finished]
        if unfinished:  # a bug, never an expected state: refuse to go on to the deletes
            raise BackupError(f"key ranges {unfinished[:5]} not finished after every write returned", RESUME_HINT)

    def _raise_if_stopped(self) -> None:
        if self.stop.is_set():
            raise RestoreInterrupted(
                "restore stopped: the writes in flight finished and the checkpoint is saved",
                "run the same command again with --resume to finish",
            )

    def _collect(self, writer: BatchWriter, rejects: RejectsFile) -> None:
        stats = writer.stats
        self.summary.puts, self.summary.deletes = stats.puts, stats.deletes
        self.summary.retries, self.summary.throttled = stats.retries, stats.throttled
        self.summary.rejected = rejects.count
        self.summary.rejects_path = rejects.path if rejects.count else None
        rejects.close()

    def _write_ranges(self, ranges: list[KeyRange], writer: BatchWriter, checkpoint: Checkpoint) -> None:
        tracker = _Tracker(lambda key_range, digests: checkpoint.finish_range(key_range.index, digests))
        gets = _Gets(self.options.workers, self.stop)
        states = map_ranges(
            ranges, lambda key_range: plan_range_once(self.store, key_range, self.when), self._list_workers()
        )
        try:
            for key_range, planned in states:
                gets.raise_failure()
                if self.stop.is_set():
                    break
                if planned is None:
                    tracker.listed(key_range)
                    continue
                state = planned.state
                self._count(state)
                if state.present:
                    tracker.present(key_range, None, writes=1)
                    if not gets.submit(self._restore_item, key_range, planned, writer, tracker):
                        break
                self._show(writer)
            gets.wait(lambda: self._show(writer))
            gets.raise_failure()
            writer.flush()
        finally:
            getattr(states, "close", lambda: None)()  # a generator: stop its listing threads now
            gets.close()

    def _restore_item(self, key_range: KeyRange, planned: Planned, writer: BatchWriter, tracker: _Tracker) -> None:
        state = planned.state
        assert state.version is not None and self.resolver is not None
        if self.stop.is_set():
            return
        at, max_lag = self.options.at, self.options.max_lag
        if planned.stored is not None:  # the planner's GET: the version is not read again
            resolution = self.resolver.resolve_stored(state, planned.stored, at, max_lag=max_lag)
        else:
            resolution = self.resolver.resolve(state, at, max_lag=max_lag)
        with self._lock:
            self.summary.image_reads += 1
            self.summary.legacy = self.summary.legacy or resolution.legacy
        image = resolution.image
        if resolution.kind not in (TAKE, REJECT) or image is None:
            tracker.written(key_range)  # a stray object, or the item's state is held under another name
            return
        problem = image_key_problem(image, writer.schema, self.key_types)
        if problem is not None:
            writer.reject(image, f"{state.object_key} {state.version.version_id}: {problem}")
            tracker.written(key_range)
            return
        digest = key_digest(key_of(image, writer.schema)) if self.options.sync else None
        writer.put(image, done=lambda: tracker.written(key_range, digest))

    # -- sync -------------------------------------------------------------------------------------

    def _sync(self, target: Target, writer: BatchWriter | None, present: set[bytes]) -> None:
        """Delete the target's items absent at T (a dry run counts them)."""
        if self.options.keys:
            keys: Iterable[dict[str, Any]] = (json.loads(text) for text in self.options.keys)
        else:
            keys = scan_keys(self.dynamodb, target.name, target.key_schema)
        for key in keys:
            if self.stop.is_set():
                return
            if writer is None:
                if any(digest in present for digest in key_name_digests(key, target.key_schema)):
                    continue
                self.summary.deletes += 1
            elif key_digest(key) not in present:
                writer.delete(key)
            self._show(writer)

    # -- reporting --------------------------------------------------------------------------------

    def _show(self, writer: BatchWriter | None = None, *, force: bool = False) -> None:
        if self.progress is None:
            return
        moment = time.monotonic()
        if not force and moment - self._shown < PROGRESS_EVERY_SECONDS:
            return
        self._shown = moment
        if writer is not None:
            self.summary.puts, self.summary.deletes = writer.stats.puts, writer.stats.deletes
        self.progress(self.summary)

    def _warnings(self) -> None:
        summary, options = self.summary, self.options
        if summary.legacy:
            summary.warnings.append(LEGACY_WARNING)
        if self.resolver is not None:
            summary.warnings += self.resolver.skips.lines()
        if summary.items == 0 and summary.ranges_already_done == 0:
            summary.warnings.append("the backup holds no versions for this restore (check --bucket, --prefix, --table)")
        elif summary.puts == 0 and summary.earliest is not None and summary.earliest > options.at:
            summary.warnings.append(
                f"nothing existed at {epoch_to_iso(options.at)}: the earliest backup version was written at "
                f"{epoch_to_iso(summary.earliest)}"
            )


def scan_keys(client: Any, table: str, schema: k.KeySchema) -> Iterable[dict[str, Any]]:
    """Every item's key in ``table`` (a Scan projecting the key attributes)."""
    names = {f"#k{index}": name for index, name in enumerate(schema.attribute_names)}
    args: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    while True:
        page = client.scan(**args)
        for item in page.get("Items", []):
            yield {name: item[name] for name in schema.attribute_names}
        if not page.get("LastEvaluatedKey"):
            return
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
