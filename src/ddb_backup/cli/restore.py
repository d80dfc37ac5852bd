"""``ddb-backup restore``: a table (or some of its items) as it was at a point in time."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import click

from ddb_backup.cli import preflight
from ddb_backup.cli.common import (
    MAX_PROCESSES,
    PROCESSES,
    RATE,
    TABLE_NAME,
    THREADS,
    Aws,
    LocalFile,
    aws_options,
    bucket_options,
    table_tenancy,
    tenancy_options,
)
from ddb_backup.cli.lookup import checked_store, key_schema, parse_key_option
from ddb_backup.cli.output import echo_json, json_option
from ddb_backup.cli.progress import progress
from ddb_backup.errors import UserError
from ddb_backup.format import keys as k
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.restore.execute import DEFAULT_WORKERS, RestoreInterrupted, RestoreOptions, RestoreSummary, restore
from ddb_backup.restore.options import validate
from ddb_backup.restore.timeline import DEFAULT_MAX_LAG, ItemState
from ddb_backup.store import ObjectStore
from ddb_backup.timeparse import FORMS, parse_duration, parse_time

INTERRUPTED = 130
DECLINED = 1
REJECTED = 4


def parse_key(text: str) -> str:
    """``--key``: the forms ``history --key`` takes (``cli.lookup.parse_key_option``), as canonical ``key_json``."""
    return k.key_json(parse_key_option(text))


@click.command()
@aws_options
@bucket_options
@click.option("--table", "source", type=TABLE_NAME, required=True, help="The backed-up (source) table.")
@click.option("--at", "at_text", required=True, metavar="TIME", help=f"The point in time: {FORMS}.")
@click.option(
    "--to-table", "target", type=TABLE_NAME, required=True, help="The table to restore into (created when missing)."
)
@click.option("--tenant", help="Only this tenant's items (MultiTenancyColumn value; %none: items without one).")
@click.option(
    "--key",
    "key_texts",
    multiple=True,
    metavar="JSON",
    help='Only this item; repeatable. DynamoDB JSON {"pk":{"S":"a"}} or plain JSON {"pk":"a"}, as history takes.',
)
@click.option("--overwrite", is_flag=True, help="Allow a non-empty existing target table.")
@click.option("--sync", is_flag=True, help="With --overwrite: also delete target items absent at TIME.")
@click.option("--dry-run", is_flag=True, help="Print the plan (the versions it would read and counts); write nothing.")
@click.option(
    "--write-rate",
    type=RATE,
    metavar="N",
    help="Write units per second at most (default: no limit).",
)
@click.option(
    "--workers",
    type=THREADS,
    default=DEFAULT_WORKERS,
    show_default=True,
    help="S3 reads per process: N ranges listed at once and N image GETs in flight.",
)
@click.option(
    "--processes",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    metavar="N",
    help="Processes that write, each with --workers threads (0: two per core; at most one per 8 key ranges).",
)
@click.option("--resume", is_flag=True, help="Finish an interrupted restore (same options) from its checkpoint.")
@click.option(
    "--segment",
    type=click.IntRange(0, MAX_PROCESSES - 1),
    default=0,
    show_default=True,
    metavar="I",
    help="This process's share (0-based).",
)
@click.option("--total-segments", type=PROCESSES, default=1, show_default=True, metavar="N", help="Shares in all.")
@click.option(
    "--max-lag",
    default=f"{DEFAULT_MAX_LAG / 3600:g}h",
    show_default=True,
    help="Longest time from a change to its backup write (stream retention 24 h plus a margin).",
)
@click.option("--checkpoint", type=LocalFile(), help="Checkpoint file path.")
@click.option("--allow-same-table", is_flag=True, help="Allow --to-table to be the source table itself.")
@click.option(
    "--rejects",
    type=LocalFile(),
    help="Where items the target refuses go (JSON lines; default: beside the checkpoint, *.rejects.jsonl).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --overwrite, --sync, --allow-same-table (scripts).")
@tenancy_options()
@json_option
def restore_command(
    aws: Aws,
    bucket: str,
    prefix: str,
    at_text: str,
    key_texts: tuple[str, ...],
    max_lag: str,
    yes: bool,
    as_json: bool,
    **flags: Any,
) -> None:
    """Restore a table as it was at TIME, exactly by each change's own event time.

    Per item, the newest change with event time <= TIME is written to --to-table; items deleted or
    not yet created at TIME are absent. A missing target table is created from the schema saved
    with the backup (or the live source table). The target must be empty unless --overwrite; it
    may not be the source table unless --allow-same-table. Writes are BatchWriteItem in 25s,
    retried with backoff; a checkpoint file (./ddb-backup-restore-TARGET.json, or --checkpoint)
    makes an interrupted restore resumable: run the same command again with --resume.
    The writes spread over two processes per core (--processes; 1 keeps one process), each with
    its own clients and --workers threads, one progress bar and one summary. --segment I
    --total-segments N splits the work over N commands or machines (like a parallel scan); each
    restores its share of the items, together the whole table.

    --overwrite, --sync and --allow-same-table change a live table: on a terminal the restore
    first shows the target, TIME (UTC and local) and the items it would put and delete, and
    asks; without a terminal it refuses unless --yes. The first Ctrl-C stops sending writes
    (those in flight finish) and saves the checkpoint; a second one aborts at once. An item the
    target refuses (e.g. an empty string in an index key) is written to the rejects file with
    DynamoDB's reason; every other item is restored.

    \b
    Example:
      ddb-backup restore --bucket my-backups --table orders --at 2026-11-27T10:00:00Z \\
          --to-table orders-restored
      ddb-backup restore --bucket my-backups --table orders --at -15m --to-table orders \\
          --allow-same-table --overwrite --key '{"pk":{"S":"customer#1"},"sk":{"N":"1"}}'

    \b
    Exit codes: 0 restored (or planned, with --dry-run), 1 you answered no at the prompt
    (nothing written), 2 a usage or user error, nothing written (the message says what to
    change), 3 an AWS or storage error (retries spent; --resume continues), 4 restored except
    the items the target refused (listed in the rejects file), 5 the backup holds nothing for
    the --table, --prefix, --tenant or --key given, or nothing at a TIME before the table's
    first write (nothing created; the message says what the bucket holds), 130 interrupted by
    Ctrl-C (--resume continues), 141 stdout closed early (e.g. `| head`).
    """
    options = RestoreOptions(
        bucket=bucket,
        prefix=prefix,
        at=parse_time(at_text),
        at_relative=at_text.strip().startswith("-"),
        keys=tuple(parse_key(text) for text in key_texts),
        max_lag=parse_duration(max_lag),
        tenancy=table_tenancy(flags.pop("tenant_column"), flags.pop("no_tenants")),
        **flags,
    )
    validate(options, time.time())  # before any AWS call
    tenant = options.tenant_segment
    store = checked_store(aws, bucket, prefix, options.source, tenant, max_pool=max(64, options.workers * 2))
    if key_texts:
        schema = key_schema(aws, options.source, store, prefix)
        keys = [parse_key_option(text) for text in key_texts]
        preflight.check_keys(store, prefix, options.source, keys, tenant=tenant, schema=schema)
    dynamodb = aws.client("dynamodb", max_pool=max(64, options.workers))
    if not options.resume:  # a checkpoint exists: the interrupted run passed this check
        _refuse_before_the_backup(options, lambda opts: restore(opts, store, dynamodb), store)
    clients = WorkerClients(aws, bucket, options.workers)
    if not yes:
        _confirm(options, lambda opts: restore(opts, store, dynamodb))
    stop = threading.Event()
    plan: list[dict[str, str]] = []  # --dry-run --json: the versions it would read go into the JSON
    try:
        with progress("restore") as update, _ctrl_c_stops(stop):
            summary = restore(
                options,
                store,
                dynamodb,
                progress=lambda s: update(
                    s.puts, None, f"items put, {s.items} looked at, {s.metadata_reads} metadata reads"
                ),
                on_plan=(lambda state: plan.append(_plan_entry(state))) if as_json else _print_plan_line,
                stop=stop,
                connect=clients,
            )
    except (KeyboardInterrupt, RestoreInterrupted):
        click.echo("interrupted: run the same command again with --resume to finish", err=True)
        sys.exit(INTERRUPTED)
    if as_json:
        earliest = None if summary.earliest is None else epoch_to_iso(summary.earliest)  # ISO, as every time
        summary_json = {
            "at": epoch_to_iso(options.at),
            "target": options.target,
            **asdict(summary),
            "earliest": earliest,
        }
        echo_json(summary_json | ({"plan": plan} if options.dry_run else {}))
    else:
        click.echo(f"TIME: {epoch_to_iso(options.at)}")
        _print_summary(summary)
    if summary.rejected:
        click.echo(
            f"error: the target refused {summary.rejected} item(s); they are in {summary.rejects_path} with "
            "DynamoDB's reason (Try: fix them, or the table's indexes, and write them again)",
            err=True,
        )
        sys.exit(REJECTED)


@dataclass(frozen=True)
class WorkerClients:
    """A worker process's own store and DynamoDB client, made as this command makes its own (picklable:
    it crosses to each process of ``--processes``)."""

    aws: Aws
    bucket: str
    workers: int

    def __call__(self) -> tuple[Any, Any]:
        store = self.aws.store(self.bucket, max_pool=max(64, self.workers * 2))
        return store, self.aws.client("dynamodb", max_pool=max(64, self.workers))


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def destructive_flags(options: RestoreOptions) -> list[str]:
    """The flags of ``options`` that change a live table (what needs a confirmation)."""
    same_table = options.allow_same_table and options.target == options.source
    flags = [("--allow-same-table", same_table), ("--overwrite", options.overwrite), ("--sync", options.sync)]
    return [name for name, on in flags if on]


def _refuse_before_the_backup(
    options: RestoreOptions, plan: Callable[[RestoreOptions], RestoreSummary], store: ObjectStore
) -> None:
    """TIME before the table's first write (S3 write time) and nothing present at TIME (a dry run of the
    plan says, only then): a wrong time, not an empty table; exit 5 before the target is created."""
    first = preflight.first_write_after(store, options.prefix, options.source, options.at, options.tenant_segment)
    if first is not None and plan(replace(options, dry_run=True)).puts == 0:
        raise preflight.before_first_write(options.source, first, options.at, "--at")


def _confirm(options: RestoreOptions, plan: Callable[[RestoreOptions], RestoreSummary]) -> None:
    """Show what a destructive restore will do and ask; refuse when nobody can answer."""
    flags = destructive_flags(options)
    if not flags or options.dry_run:
        return
    if not stdin_is_terminal():
        raise UserError(
            f"{' '.join(flags)} change(s) the live table {options.target!r} and there is no terminal to ask",
            "add --yes to confirm in a script",
        )
    planned = plan(replace(options, dry_run=True))
    at = datetime.fromtimestamp(options.at, tz=UTC)
    click.echo(f"restore into table {options.target!r} ({', '.join(flags)})", err=True)
    click.echo(f"TIME: {at:%Y-%m-%d %H:%M:%S} UTC = {at.astimezone():%Y-%m-%d %H:%M:%S %Z} local", err=True)
    deletes = f", delete {planned.deletes}" if options.sync else ""
    click.echo(f"items to put: {planned.puts}{deletes} (from a dry run of the plan)", err=True)
    if not click.confirm("Go ahead?", default=False, err=True):
        click.echo("not restored: nothing was written", err=True)
        sys.exit(DECLINED)


@contextmanager
def _ctrl_c_stops(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C sets ``stop`` (no new writes; checkpoint saved), a second one exits at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            click.echo("aborted: the checkpoint holds the ranges finished so far; --resume continues", err=True)
            os._exit(INTERRUPTED)  # worker threads may be waiting on AWS: do not wait for them
        stop.set()
        click.echo(
            "stopping: no new writes, the ones in flight finish, then the checkpoint is saved "
            "(Ctrl-C again to abort now)",
            err=True,
        )

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        if not stop.is_set():  # once stopping, a second Ctrl-C still aborts, until the process exits
            signal.signal(signal.SIGINT, previous)


def _plan_entry(state: ItemState) -> dict[str, str]:
    assert state.version is not None
    return {"object_key": state.object_key, "version_id": state.version.version_id}


def _print_plan_line(state: ItemState) -> None:
    assert state.version is not None
    click.echo(f"read {state.object_key} {state.version.version_id}")


def _print_summary(summary: RestoreSummary) -> None:
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    if summary.target_created:
        click.echo("target table: would be created" if summary.dry_run else "target table: created")
    for line in summary.lines():
        click.echo(line)
