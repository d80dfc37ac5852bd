"""``ddb-backup export``."""

from __future__ import annotations

import click

from ddb_backup.cli import preflight
from ddb_backup.cli.common import TABLE_NAME, Aws, aws_options, bucket_options, table_tenancy, tenancy_options
from ddb_backup.cli.lookup import checked_store, describe_table, tenant_segment
from ddb_backup.cli.output import echo_json, json_option
from ddb_backup.cli.progress import progress
from ddb_backup.format.table_schema import load_schema
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.inspect.export import (
    COMPRESSIONS,
    DEFAULT_ITEMS_PER_FILE,
    ExportManifest,
    ExportSettings,
    export_table,
    parse_destination,
)
from ddb_backup.inspect.import_call import import_call
from ddb_backup.restore.plan import PointInTime, table_ranges
from ddb_backup.restore.resolve import resolver_for, skipped_lines
from ddb_backup.store import ObjectStore
from ddb_backup.timeparse import FORMS, parse_time

UPLOAD_PLACEHOLDER = "s3://YOUR-BUCKET/YOUR-PREFIX"


@click.command()
@bucket_options
@click.option("--table", type=TABLE_NAME, required=True, help="The table's name.")
@click.option("--at", "at_text", required=True, metavar="TIME", help=f"The point in time: {FORMS}.")
@click.option("--to", "target", required=True, help="s3://BUCKET/PREFIX or a local folder; must hold no export.")
@click.option("--compress", type=click.Choice(list(COMPRESSIONS)), default="gzip", show_default=True)
@click.option("--items-per-file", type=click.IntRange(min=1), default=DEFAULT_ITEMS_PER_FILE, show_default=True)
@click.option("--tenant", help="Only this tenant's items (MultiTenancyColumn value).")
@tenancy_options()
@json_option
@aws_options
def export(
    bucket: str,
    prefix: str,
    table: str,
    at_text: str,
    target: str,
    compress: str,
    items_per_file: int,
    tenant: str | None,
    tenant_column: str | None,
    no_tenants: bool,
    as_json: bool,
    aws: Aws,
) -> None:
    """Write the table's state at a time in the DynamoDB JSON format DynamoDB's "Import from S3" reads.

    Files data/NNNNN.json.gz (one {"Item": {...}} per line) and manifest.json (counts, sha256 and
    md5 per file). Then let AWS do the heavy restore: the command to run is printed at the end.

    \b
    Example:
      ddb-backup export --bucket my-backups --table orders --at 2026-11-27T10:00:00Z \\
        --to s3://my-exports/orders-1000/ --compress zstd

    \b
    Exit codes: 0 written, 2 bad options or a destination that is not empty, 3 AWS error,
    5 the backup holds nothing for the table (or tenant) under this prefix, or nothing at TIME
    (it precedes the table's first write), or the --to bucket does not exist,
    130 interrupted by Ctrl-C, 141 stdout closed early (e.g. `| head`).
    """
    at = parse_time(at_text)
    tenancy = table_tenancy(tenant_column, no_tenants)
    if not target.startswith("s3://"):
        preflight.check_local_path("--to", target, folder=True)
    store = checked_store(aws, bucket, prefix, table, tenant_segment(tenant))
    preflight.check_s3_url(aws.client("s3"), target, "--to")
    destination = parse_destination(target, aws.client("s3") if target.startswith("s3://") else None)
    schema = load_schema(store, prefix, table) or describe_table(aws, table)
    s3_target = target if target.startswith("s3://") else UPLOAD_PLACEHOLDER
    call = import_call(s3_target, COMPRESSIONS[compress][1], schema)
    manifest = ExportManifest(table, at, compress, source={"bucket": bucket, "prefix": prefix})
    manifest.import_table = call.request
    settings = ExportSettings(compression=compress, items_per_file=items_per_file)
    ranges = table_ranges(store, prefix, table, tenant_segment(tenant))
    with progress(f"export {table}") as update:
        export_table(
            store,
            ranges,
            PointInTime(at=at),
            destination,
            manifest,
            settings,
            resolver=resolver_for(store, prefix, table, tenancy=tenancy),
            on_progress=lambda written: update(written, None, "items written"),
            on_empty=lambda: _refuse_before_the_backup(store, prefix, table, tenant_segment(tenant), at),
        )
    if as_json:  # the warnings are in the JSON
        echo_json(
            {
                **manifest.as_dict(),
                "manifest": destination.describe("manifest.json"),
                "import_command": call.command,
                "warnings": call.warnings,
            }
        )
        return
    click.echo(
        f"exported {manifest.item_count} items of {table} at TIME {epoch_to_iso(at)} in {len(manifest.parts)} "
        f"files to {destination.describe('')}"
    )
    if manifest.legacy_items:
        click.echo(f"note: {manifest.legacy_items} items were decided by S3 write time (the original tool's versions)")
    for warning in call.warnings:
        click.echo(f"warning: {warning}", err=True)
    where = "" if target.startswith("s3://") else f" (upload {target} to {UPLOAD_PLACEHOLDER} first)"
    click.echo(f"import it into a new table{where}:\n  {call.command}")
    for line in skipped_lines(manifest.skipped):
        click.echo(f"warning: {line}", err=True)


def _refuse_before_the_backup(store: ObjectStore, prefix: str, table: str, tenant: str | None, at: float) -> None:
    """No item at TIME and TIME before the table's first write: a wrong time, not an empty table (exit 5)."""
    first = preflight.first_write_after(store, prefix, table, at, tenant)
    if first is not None:
        raise preflight.before_first_write(table, first, at, "--at")
