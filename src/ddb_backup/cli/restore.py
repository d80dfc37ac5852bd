"""``ddb-backup restore``: a table (or some of its items) as it was at a point in time."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from ddb_backup import keys as k
from ddb_backup import preflight
from ddb_backup.cli.common import Aws, aws_options, bucket_options
from ddb_backup.cli.lookup import checked_store, key_schema, parse_key_option
from ddb_backup.cli.output import echo_json, json_option
from ddb_backup.cli.progress import progress
from ddb_backup.restore.execute import DEFAULT_WORKERS, RestoreOptions, RestoreSummary, restore
from ddb_backup.restore.timeline import DEFAULT_MAX_LAG, ItemState
from ddb_backup.timeparse import FORMS, parse_duration, parse_time
from ddb_backup.version_meta import epoch_to_iso

INTERRUPTED = 130


def parse_key(text: str) -> str:
    """``--key``: the forms ``history --key`` takes (``cli.lookup.parse_key_option``), as canonical ``key_json``."""
    return k.key_json(parse_key_option(text))


@click.command()
@aws_options
@bucket_options
@click.option("--table", "source", required=True, help="The backed-up (source) table.")
@click.option("--at", "at_text", required=True, metavar="TIME", help=f"The point in time: {FORMS}.")
@click.option("--to-table", "target", required=True, help="The table to restore into (created when missing).")
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
    type=click.FloatRange(0, min_open=True),
    metavar="N",
    help="Write units per second at most (default: no limit).",
)
@click.option(
    "--workers", type=click.IntRange(1, 512), default=DEFAULT_WORKERS, show_default=True, help="Concurrent S3 reads."
)
@click.option("--resume", is_flag=True, help="Finish an interrupted restore (same options) from its checkpoint.")
@click.option(
    "--segment",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    metavar="I",
    help="This process's share (0-based).",
)
@click.option(
    "--total-segments", type=click.IntRange(1), default=1, show_default=True, metavar="N", help="Shares in all."
)
@click.option(
    "--max-lag",
    default=f"{DEFAULT_MAX_LAG / 3600:g}h",
    show_default=True,
    help="Longest time from a change to its backup write (stream retention 24 h plus a margin).",
)
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), help="Checkpoint file path.")
@click.option("--allow-same-table", is_flag=True, help="Allow --to-table to be the source table itself.")
@json_option
def restore_command(
    aws: Aws,
    bucket: str,
    prefix: str,
    at_text: str,
    key_texts: tuple[str, ...],
    max_lag: str,
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
    --segment I --total-segments N splits the work over N processes or machines (like a parallel
    scan); each restores its share of the items, together the whole table.

    \b
    Example:
      ddb-backup restore --bucket my-backups --table orders --at 2026-11-27T10:00:00Z \\
          --to-table orders-restored
      ddb-backup restore --bucket my-backups --table orders --at -15m --to-table orders \\
          --allow-same-table --overwrite --key '{"pk":{"S":"customer#1"},"sk":{"N":"1"}}'

    \b
    Exit codes: 0 restored (or planned, with --dry-run), 2 a usage or user error (the message
    says what to change), 3 an AWS or storage error (retries spent; --resume continues),
    4 the backup holds nothing for the --table, --prefix, --tenant or --key given (nothing is
    created; the message says what the bucket holds), 130 interrupted (--resume continues).
    """
    options = RestoreOptions(
        bucket=bucket,
        prefix=prefix,
        at=parse_time(at_text),
        at_relative=at_text.strip().startswith("-"),
        keys=tuple(parse_key(text) for text in key_texts),
        max_lag=parse_duration(max_lag),
        **flags,
    )
    tenant = options.tenant_segment
    store = checked_store(aws, bucket, prefix, options.source, tenant, max_pool=max(64, options.workers * 2))
    if key_texts:
        schema = key_schema(aws, options.source, store, prefix)
        keys = [parse_key_option(text) for text in key_texts]
        preflight.check_keys(store, prefix, options.source, keys, tenant=tenant, schema=schema)
    dynamodb = aws.client("dynamodb", max_pool=max(64, options.workers))
    try:
        with progress("restore") as update:
            summary = restore(
                options,
                store,
                dynamodb,
                progress=lambda s: update(
                    s.puts, None, f"items put, {s.items} looked at, {s.metadata_reads} metadata reads"
                ),
                on_plan=_print_plan_line if options.dry_run else None,
            )
    except KeyboardInterrupt:
        click.echo("interrupted: run the same command again with --resume to finish", err=True)
        sys.exit(INTERRUPTED)
    if as_json:
        echo_json({"at": epoch_to_iso(options.at), "target": options.target, **asdict(summary)})
    else:
        click.echo(f"TIME: {epoch_to_iso(options.at)}")
        _print_summary(summary)


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
