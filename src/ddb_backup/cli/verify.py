"""``ddb-backup verify``."""

from __future__ import annotations

import threading
from typing import Any

import click

from ddb_backup.cli.common import (
    RATE,
    TABLE_NAME,
    THREADS,
    Aws,
    aws_options,
    bucket_options,
    naming_options,
    table_tenancy,
    tenancy_options,
)
from ddb_backup.cli.lookup import checked_store, describe_table
from ddb_backup.cli.output import echo_json, json_option, short_key
from ddb_backup.cli.preflight import NoSuchBucket, NothingMatches
from ddb_backup.cli.progress import Update, progress
from ddb_backup.errors import UserError
from ddb_backup.format.keys import KeySchema, table_prefix
from ddb_backup.inspect.verify import (
    DEFAULT_SEGMENTS,
    VerifyOptions,
    VerifyReport,
    uses_plain_text_names,
    verify_table,
)
from ddb_backup.restore.resolve import skipped_lines
from ddb_backup.timeparse import parse_duration

SHOWN = 50
DRIFT_HINT = (
    "run `ddb-backup full-backup` for this table to bring the backup up to date, and check the function's "
    "errors (its logs, the RecordsFailed metric, the event source mapping's state)"
)


@click.command()
@bucket_options
@click.option("--table", type=TABLE_NAME, required=True, help="The live table to compare with its backup.")
@click.option(
    "--segments",
    type=THREADS,
    default=DEFAULT_SEGMENTS,
    show_default=True,
    help="Parallel scan segments.",
)
@click.option(
    "--read-rate",
    type=RATE,
    help="Read capacity units per second to use at most (default: no limit).",
)
@click.option("--grace", default="60s", show_default=True, help="Differences younger than this are in flight.")
@naming_options(detect=True)
@tenancy_options(column=False)
@json_option
@aws_options
def verify(
    bucket: str,
    prefix: str,
    table: str,
    segments: int,
    read_rate: float | None,
    grace: str,
    plain_text: bool | None,
    tenant_column: str | None,
    no_tenants: bool,
    as_json: bool,
    aws: Aws,
) -> None:
    """Compare the live table (a consistent, rate-limited parallel scan) with the backup's newest state.

    Lists items missing from the backup, items the backup holds that the table no longer has, and
    items whose images differ. A difference is read again after the grace period: one that settles,
    or whose item or backup changed within it, is in flight, not drift. Memory: about 200 bytes per
    table item (digests of its object key and image, and its key).

    \b
    Example:
      ddb-backup verify --bucket my-backups --prefix prod --table orders --segments 8 --read-rate 500

    \b
    Exit codes: 0 in sync, 1 drift found (with a hint), 2 bad options or no such table, 3 AWS error
    (also: AWS cannot be reached), 5 the backup holds nothing for the table under this prefix,
    130 interrupted by Ctrl-C, 141 stdout closed early (e.g. `| head`).
    """
    grace_seconds = parse_duration(grace)
    tenancy = table_tenancy(tenant_column, no_tenants)
    try:
        store = checked_store(aws, bucket, prefix, table)
    except NothingMatches as err:
        if isinstance(err, NoSuchBucket):
            raise
        err.hint = f"{err.hint}; if {table!r} was never backed up, run `ddb-backup full-backup` with these options"
        raise
    description = describe_table(aws, table)
    if description is None:
        raise UserError(f"the table {table!r} does not exist (or may not be described)", "check --table and --region")
    if plain_text is None:
        plain_text = uses_plain_text_names(store, table_prefix(prefix, table))
    options = VerifyOptions(
        prefix=prefix,
        table=table,
        schema=KeySchema.from_describe_table(description),
        plain_text=plain_text,
        tenant_column=tenant_column,
        tenancy=tenancy,
        segments=segments,
        read_rate=read_rate,
        grace=grace_seconds,
    )
    with progress(f"verify {table}") as update:
        report = verify_table(store, CountingScans(aws.client("dynamodb"), update), options)
    if as_json:
        echo_json(report.as_dict())
    else:
        _print(report)
    if not report.in_sync:
        click.echo(f"drift: the backup does not match the table (Try: {DRIFT_HINT})", err=True)
        click.get_current_context().exit(1)


class CountingScans:
    """The DynamoDB client, its Scan pages counted into the progress line (the library stays quiet)."""

    def __init__(self, client: Any, update: Update) -> None:
        self.client, self.update, self.items = client, update, 0
        self._lock = threading.Lock()

    def scan(self, **args: Any) -> Any:
        page = self.client.scan(**args)
        with self._lock:
            self.items += len(page.get("Items", []))
            self.update(self.items, None, "table items scanned")
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _print(report: VerifyReport) -> None:
    counts = report.counts()
    click.echo(
        f"table: {report.table_items} items; backup: {report.backup_items} items; {report.matching} match; "
        f"{report.read_capacity:.0f} read capacity units"
    )
    for difference in report.drift[:SHOWN]:
        click.echo(f"  {difference.kind:<8} {short_key(difference.key, difference.object_key)}: {difference.reason}")
    if len(report.drift) > SHOWN:
        click.echo(f"  ... and {len(report.drift) - SHOWN} more (--json lists all)")
    click.echo(
        f"drift: {counts['missing']} missing from the backup, {counts['extra']} only in the backup, "
        f"{counts['differs']} differ; {len(report.in_flight)} in flight"
    )
    click.echo("in sync" if report.in_sync else "NOT in sync")
    for line in skipped_lines(report.skipped):
        click.echo(f"warning: {line}", err=True)
