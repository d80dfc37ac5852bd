"""``ddb-backup diff``."""

from __future__ import annotations

import click

from ddb_backup.cli import preflight
from ddb_backup.cli.common import TABLE_NAME, Aws, aws_options, bucket_options, table_tenancy, tenancy_options
from ddb_backup.cli.lookup import checked_store, key_schema, tenant_segment
from ddb_backup.cli.output import changes_text, echo_json, json_option, short_key
from ddb_backup.errors import UserError
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.inspect.diff import DiffCounts, diff_table
from ddb_backup.restore.plan import table_ranges
from ddb_backup.restore.resolve import resolver_for
from ddb_backup.store import ObjectStore
from ddb_backup.timeparse import FORMS, parse_time


@click.command()
@bucket_options
@click.option("--table", type=TABLE_NAME, required=True, help="The table's name.")
@click.option("--from", "start_text", required=True, metavar="TIME", help=f"The earlier time: {FORMS}.")
@click.option(
    "--to", "end_text", default="-0s", show_default="now", metavar="TIME", help="The later time (same forms)."
)
@click.option(
    "--tenant",
    help="Only this tenant's items (MultiTenancyColumn value): one moved out is removed, one moved in added.",
)
@tenancy_options()
@json_option
@aws_options
def diff(
    bucket: str,
    prefix: str,
    table: str,
    start_text: str,
    end_text: str,
    tenant: str | None,
    tenant_column: str | None,
    no_tenants: bool,
    as_json: bool,
    aws: Aws,
) -> None:
    """The items added, removed and changed between two points in time, from the backup alone.

    Items are compared by their backup versions first (the same version: unchanged, nothing read);
    images are read only when the versions differ.

    \b
    Example:
      ddb-backup diff --bucket my-backups --table orders \\
        --from 2026-11-27T09:00:00Z --to 2026-11-27T10:00:00Z

    \b
    Exit codes: 0 shown (whether or not anything changed), 2 bad options (also: --from later
    than --to), 3 AWS error, 5 the backup holds nothing for the table (or tenant) under this
    prefix, or nothing before both times (they precede its first write), 130
    interrupted by Ctrl-C, 141 stdout closed early (e.g. `| head`).
    """
    start, end = parse_time(start_text), parse_time(end_text)
    tenancy = table_tenancy(tenant_column, no_tenants)
    if end < start:
        raise UserError(
            f"--from {start_text!r} ({epoch_to_iso(start)}) is later than --to {end_text!r} ({epoch_to_iso(end)})",
            "give the earlier time as --from",
        )
    store = checked_store(aws, bucket, prefix, table, tenant_segment(tenant))
    counts = DiffCounts()
    ranges = table_ranges(store, prefix, table, tenant_segment(tenant))
    schema = key_schema(aws, table, store, prefix)
    resolver = resolver_for(store, prefix, table, schema, tenancy)
    changes = diff_table(
        store, ranges, start, end, counts, schema=schema, resolver=resolver, prefix=prefix, table=table
    )
    if as_json:
        listed = [change.as_dict() for change in changes]
        _before_the_backup(store, prefix, table, tenant_segment(tenant), counts, end)
        echo_json({"from": epoch_to_iso(start), "to": epoch_to_iso(end), "counts": counts.as_dict(), "changes": listed})
        return
    for change in changes:
        attrs = change.changes
        detail = "" if change.kind != "changed" else changes_text(attrs.added, attrs.removed, attrs.changed)
        click.echo(f"{change.kind:<8} {short_key(change.key, change.object_key)}  {detail}".rstrip())
    _before_the_backup(store, prefix, table, tenant_segment(tenant), counts, end)
    click.echo(
        f"{epoch_to_iso(start)} -> {epoch_to_iso(end)}: {counts.added} added, {counts.removed} removed, "
        f"{counts.changed} changed, {counts.unchanged} unchanged"
    )
    if counts.skipped:
        click.echo(f"warning: skipped {counts.skipped} objects that are not items of {table!r}", err=True)


def _before_the_backup(
    store: ObjectStore, prefix: str, table: str, tenant: str | None, counts: DiffCounts, end: float
) -> None:
    """Nothing at either time, and both before the backup's first write: the times are wrong (exit 5)."""
    if counts.added or counts.removed or counts.changed or counts.unchanged:
        return
    first = preflight.first_write_after(store, prefix, table, end, tenant)
    if first is not None:
        raise preflight.before_first_write(table, first, end, "--to")
