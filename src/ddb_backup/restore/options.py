"""What a restore is asked to do and what it reports: its options (checked before anything is touched),
its summary, and the interruption it ends with when stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ddb_backup.errors import HintedError, UserError
from ddb_backup.format import keys as k
from ddb_backup.format.version_meta import Tenancy, epoch_to_iso
from ddb_backup.restore.checkpoint import Query, default_path
from ddb_backup.restore.rejects import default_rejects_path
from ddb_backup.restore.timeline import DEFAULT_MAX_LAG, ItemState
from ddb_backup.restore.writer import DEFAULT_MAX_RETRY_SECONDS, MAX_BATCH

DEFAULT_WORKERS = 64
FUTURE_SLACK_SECONDS = 1.0
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
    processes: int = 1  # processes that write (0: two per core); more than 1 needs ``restore(connect=...)``
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
    processes: int = 1  # that wrote the items (``--processes``)
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
            *([f"processes: {self.processes}"] if self.processes > 1 else []),
            f"seconds: {self.seconds:.1f}",
        ]


class RestoreInterrupted(HintedError):
    """The run was stopped (``stop`` set, e.g. by Ctrl-C): writes in flight finished, checkpoint saved."""

    exit_code = 130


def raise_if_stopped(stop: threading.Event) -> None:
    if stop.is_set():
        raise RestoreInterrupted(
            "restore stopped: the writes in flight finished and the checkpoint is saved",
            "run the same command again with --resume to finish",
        )


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
    if options.processes < 0:
        raise UserError("--processes must be 0 (two per core) or more", "e.g. --processes 2")


def add_warnings(summary: RestoreSummary, at: float, skipped: list[str]) -> None:
    """The summary's warnings at the end of a run (``skipped``: the resolver's lines on skipped objects)."""
    if summary.legacy:
        summary.warnings.append(LEGACY_WARNING)
    summary.warnings += skipped
    if summary.items == 0 and summary.ranges_already_done == 0:
        summary.warnings.append("the backup holds no versions for this restore (check --bucket, --prefix, --table)")
    elif summary.puts == 0 and summary.earliest is not None and summary.earliest > at:
        summary.warnings.append(
            f"nothing existed at {epoch_to_iso(at)}: the earliest backup version was written at "
            f"{epoch_to_iso(summary.earliest)}"
        )
