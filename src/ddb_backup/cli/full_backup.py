"""``ddb-backup full-backup``."""

from __future__ import annotations

import click

from ddb_backup.capture.full_backup import DEFAULT_SEGMENTS, DEFAULT_WORKERS, FullBackupOptions, FullBackupSummary
from ddb_backup.cli.common import RATE, TABLE_NAME, THREADS, Aws, aws_options, bucket_options, naming_options
from ddb_backup.cli.lookup import checked_store
from ddb_backup.cli.output import echo_json, json_option
from ddb_backup.cli.progress import progress
from ddb_backup.errors import BackupError
from ddb_backup.settings import clean_prefix


@click.command("full-backup")
@bucket_options
@click.option("--table", type=TABLE_NAME, required=True, help="The table to back up.")
@click.option(
    "--segments",
    type=THREADS,
    default=DEFAULT_SEGMENTS,
    show_default=True,
    help="Parallel Scan segments (one thread each).",
)
@click.option(
    "--read-rate",
    type=RATE,
    default=None,
    help="Limit on read capacity units per second, all segments together (default: no limit).",
)
@click.option("--page-size", type=click.IntRange(1), default=None, help="Items per Scan request (default: 1 MB pages).")
@click.option(
    "--workers",
    type=THREADS,
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Concurrent writes to the bucket.",
)
@naming_options()
@json_option
@aws_options
def full_backup(
    aws: Aws,
    bucket: str,
    prefix: str,
    table: str,
    segments: int,
    read_rate: float | None,
    page_size: int | None,
    workers: int,
    plain_text: bool,
    tenant_column: str | None,
    as_json: bool,
) -> None:
    """Back up every item of a live table with a parallel, consistent Scan, and save its schema.

    Each item becomes a FULL_BACKUP version of the object the stream function writes for it, unless
    the stream already wrote a change at or after the moment the scan read it. Use the function's
    settings (--prefix, --plain-text, --tenant-column) so both write the same objects.

    \b
    Example:
      ddb-backup full-backup --bucket my-backups --prefix nightly --table orders \\
          --segments 8 --read-rate 500
    \b
    Exit codes: 0 done, 2 a usage error (e.g. no such table, bucket without versioning),
    3 an AWS error, or items that could not be written (rerun to write them),
    130 interrupted by Ctrl-C, 141 stdout closed early (e.g. `| head`).
    """
    from ddb_backup.capture.full_backup import run_full_backup

    options = FullBackupOptions(
        prefix=clean_prefix(prefix),
        plain_text=plain_text,
        tenant_column=tenant_column or None,
        segments=segments,
        read_rate=read_rate,
        page_size=page_size,
        workers=workers,
    )
    dynamodb = aws.client("dynamodb", max_pool=segments + 4)
    store = checked_store(aws, bucket, max_pool=workers + 4)
    with progress(f"full-backup {table}") as update:

        def report(summary: FullBackupSummary) -> None:
            detail = (
                f"items scanned, {summary.written} written, {summary.skipped_newer} left to newer stream changes, "
                f"{summary.failed} failed"
            )
            update(summary.scanned, summary.estimated_items or None, detail)

        summary = run_full_backup(dynamodb, store, bucket, table, options, on_progress=report)
    if as_json:
        echo_json(
            {
                "table": table,
                "scanned": summary.scanned,
                "written": summary.written,
                "newer_in_stream": summary.skipped_newer,
                "failed": summary.failed,
                "read_units": summary.consumed_read_units,
                "seconds": round(summary.seconds, 3),
                "schema_key": summary.schema_key,
            }
        )
    else:
        click.echo(
            f"full-backup {table}: {summary.scanned} items read, {summary.written} written, "
            f"{summary.skipped_newer} left to newer stream changes, {summary.failed} failed; "
            f"{summary.consumed_read_units:g} read units in {summary.seconds:.1f} s; "
            f"schema saved to {summary.schema_key}"
        )
    if summary.failed:
        raise BackupError(
            f"{summary.failed} items could not be written, e.g. {summary.errors[0]}",
            hint="rerun full-backup; items already written are not made stale by a rerun",
        )
