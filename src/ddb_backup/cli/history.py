"""``ddb-backup history``."""

from __future__ import annotations

import click

from ddb_backup.cli import preflight
from ddb_backup.cli.common import TABLE_NAME, Aws, aws_options, bucket_options, table_tenancy, tenancy_options
from ddb_backup.cli.lookup import checked_store, key_schema, parse_key_option, tenant_segment
from ddb_backup.cli.output import changes_text, echo_json, echo_table, json_option
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.inspect.history import ORIGINAL_TOOL, HistoryEntry, belongs_to_table, item_history, locate_items
from ddb_backup.restore.resolve import resolver_for


@click.command()
@bucket_options
@click.option("--table", type=TABLE_NAME, required=True, help="The table's name.")
@click.option("--key", "key_text", required=True, help='The item\'s key as JSON: {"pk":{"S":"a"}} or {"pk":"a"}.')
@click.option("--tenant", help="The tenant's value (MultiTenancyColumn), if the function uses multi-tenancy.")
@click.option("--images", is_flag=True, help="With --json: include each version's image.")
@tenancy_options()
@json_option
@aws_options
def history(
    bucket: str,
    prefix: str,
    table: str,
    key_text: str,
    tenant: str | None,
    images: bool,
    tenant_column: str | None,
    no_tenants: bool,
    as_json: bool,
    aws: Aws,
) -> None:
    """Every version of one item, oldest first: event, times, lag, and what changed.

    Plain-text object names need the table's key schema for keys of two attributes; it is read
    from the live table (DescribeTable) when reachable, else only the MD5 name is tried.

    \b
    Example:
      ddb-backup history --bucket my-backups --prefix prod --table orders \\
        --key '{"pk":{"S":"customer#1"},"sk":{"N":"1"}}'

    \b
    Exit codes: 0 shown, 2 bad options, 3 AWS error, 5 the backup holds nothing for the table,
    tenant or item given (the message says what it does hold), 130
    interrupted by Ctrl-C, 141 stdout closed early (e.g. `| head`).
    """
    key = parse_key_option(key_text)
    tenancy = table_tenancy(tenant_column, no_tenants)
    store = checked_store(aws, bucket, prefix, table, tenant_segment(tenant))
    schema = key_schema(aws, table, store, prefix)
    preflight.check_keys(store, prefix, table, [key], tenant=tenant_segment(tenant), schema=schema)
    object_keys = locate_items(store, prefix, table, key, tenant=tenant_segment(tenant), schema=schema)
    entries = item_history(
        store, object_keys, belongs=belongs_to_table(resolver_for(store, prefix, table, schema, tenancy), key)
    )
    object_key = ", ".join(object_keys)  # more than one: the item's names are merged into one history
    if as_json:
        echo_json({"object_key": object_key, "versions": [e.as_dict(with_image=images) for e in entries]})
        return
    click.echo(f"{object_key}: {len(entries)} changes, oldest first")
    echo_table(
        ["EVENT TIME", "EVENT", "SEQUENCE", "WRITTEN", "LAG", "CHANGES"],
        [_row(entry) for entry in entries],
    )
    if any(entry.writer == ORIGINAL_TOOL for entry in entries):
        click.echo("note: versions without our metadata (the original tool's) show S3's write time as event time")


def _row(entry: HistoryEntry) -> list[str]:
    event = entry.event if entry.writer != ORIGINAL_TOOL else f"{entry.event}*"
    if entry.removed_by and entry.event != "ttl":
        event += f" ({entry.removed_by})"
    text = changes_text(entry.changes.added, entry.changes.removed, entry.changes.changed)
    return [
        epoch_to_iso(entry.event_time),
        event,
        entry.sequence_number or "",
        epoch_to_iso(entry.written),
        f"{entry.lag:.1f}s",
        text or "(no change)",
    ]
