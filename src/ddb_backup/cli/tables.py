"""``ddb-backup tables``."""

from __future__ import annotations

import click

from ddb_backup.cli import preflight
from ddb_backup.cli.common import Aws, aws_options, bucket_options, table_tenancy, tenancy_options
from ddb_backup.cli.lookup import checked_store
from ddb_backup.cli.output import echo_json, echo_table, json_option
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.inspect.tables import Coverage, holds_items_directly, summarize_table, table_names
from ddb_backup.restore.resolve import skipped_lines


@click.command()
@bucket_options
@tenancy_options()
@json_option
@aws_options
def tables(bucket: str, prefix: str, tenant_column: str | None, no_tenants: bool, as_json: bool, aws: Aws) -> None:
    """The tables (and tenants) a backup bucket holds: items, versions, and the time covered.

    Times are S3 write times (LastModified); a change's own event time is at most the stream's
    retention (24 h) earlier. Each table's versions are listed once.

    \b
    Example:
      ddb-backup tables --bucket my-backups --prefix prod

    \b
    Exit codes: 0 shown, 2 bad options, 3 AWS error, 5 no tables under this prefix (the message
    names the prefixes found there instead, or the bucket's top-level folders),
    130 interrupted by Ctrl-C, 141 stdout closed early (e.g. `| head`).
    """
    tenancy = table_tenancy(tenant_column, no_tenants)
    store = checked_store(aws, bucket)
    names = list(table_names(store, prefix))
    prefixes = [name for name in names if preflight.looks_like_prefix(store, prefix, name)]
    # a prefix's name may also be a table's (the original tool's without a prefix: /orders/<md5>)
    tables = [name for name in names if name not in prefixes or holds_items_directly(store, prefix, name)]
    summaries = [summarize_table(store, prefix, name, tenancy=tenancy) for name in tables]
    if not summaries:
        preflight.no_tables(store, bucket, prefix, prefixes)
    where = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    for name in prefixes:
        role = "also a prefix" if name in tables else "a prefix, not a table"
        click.echo(f"note: {name!r} is {role}: `ddb-backup tables --prefix {where}{name}`", err=True)
    if as_json:
        echo_json({"tables": [summary.as_dict() for summary in summaries], "prefixes": prefixes})
        return
    rows = []
    for summary in summaries:
        rows.append([summary.name, *_cells(summary.total)])
        rows += [[f"  tenant {tenant}", *_cells(coverage)] for tenant, coverage in sorted(summary.tenants.items())]
    echo_table(["TABLE", "ITEMS", "CURRENT", "VERSIONS", "DELETES", "FIRST WRITE", "LAST WRITE"], rows)
    for summary in summaries:
        for line in skipped_lines(summary.skipped):
            click.echo(f"warning: {summary.name}: {line}", err=True)


def _cells(coverage: Coverage) -> list[str]:
    first = "" if coverage.first_write is None else epoch_to_iso(coverage.first_write)
    last = "" if coverage.last_write is None else epoch_to_iso(coverage.last_write)
    return [
        str(coverage.items),
        str(coverage.current_items),
        str(coverage.versions),
        str(coverage.delete_markers),
        first,
        last,
    ]
