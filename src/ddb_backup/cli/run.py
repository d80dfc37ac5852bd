"""``ddb-backup run``: the stream runner, for use without Lambda."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from ddb_backup.cli.common import Aws, aws_options, bucket_options, naming_options


@contextmanager
def stop_on_ctrl_c(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks for a clean stop (the batch in hand is finished and checkpointed);
    a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first(_signum: int, _frame: Any) -> None:
        click.echo("stopping after the current batch (Ctrl-C again to abort)", err=True)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@click.command("run")
@bucket_options
@click.option("--table", required=True, help="The table whose stream to back up.")
@click.option("--until-idle", is_flag=True, help="Stop once every open shard has no new records.")
@click.option(
    "--checkpoint",
    metavar="PATH_OR_S3URL",
    default=None,
    help="Where to remember progress (default: s3://BUCKET/[PREFIX/]~ddb-backup/checkpoints/TABLE.json).",
)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True, help="Records per batch.")
@naming_options()
@aws_options
def run(
    aws: Aws,
    bucket: str,
    prefix: str,
    table: str,
    until_idle: bool,
    checkpoint: str | None,
    batch_size: int,
    plain_text: bool,
    tenant_column: str | None,
) -> None:
    """Back up a table's stream without Lambda: read its shards and hand each batch to the
    function's own code, in Lambda's event shape.

    Reads a child shard only after its parent, checkpoints after every acknowledged batch (a restart
    resumes there), retries failed records from the lowest one, and reports records the stream
    trimmed before they were read. Ctrl-C stops after the current batch.

    \b
    Example:
      ddb-backup run --bucket my-backups --prefix nightly --table orders
      ddb-backup run --bucket my-backups --table orders --until-idle --checkpoint ./orders.checkpoint.json
    \b
    Exit codes: 0 stopped cleanly, 1 stopped cleanly but records were lost before they could be read
    (take a full backup), 2 a usage error, 3 an AWS error or a batch that kept failing.
    """
    from ddb_backup.checkpoint import default_location, open_checkpoints
    from ddb_backup.handler import build_runtime
    from ddb_backup.settings import Settings, clean_prefix
    from ddb_backup.stream_runner import RunnerOptions, StreamRunner, capture_handler, stream_arn_for

    settings = Settings(
        bucket, clean_prefix(prefix), plain_text, tenant_column or None, expected_bucket_owner=aws.expected_bucket_owner
    )
    dynamodb, s3 = aws.client("dynamodb"), aws.client("s3")
    stream_arn = stream_arn_for(dynamodb, table, needs_old_image=settings.tenant_column is not None)
    runtime = build_runtime(settings, s3_client=s3, dynamodb_client=dynamodb)
    checkpoints = open_checkpoints(checkpoint or default_location(bucket, settings.prefix, table), lambda: s3)
    stop = threading.Event()
    runner = StreamRunner(
        aws.client("dynamodbstreams"),
        stream_arn,
        capture_handler(runtime.capture),
        checkpoints,
        RunnerOptions(batch_size=batch_size, until_idle=until_idle),
        stop=stop,
        notify=lambda message: click.echo(message, err=True),
    )
    click.echo(f"run {table}: reading {stream_arn}; checkpoint {checkpoints.location}", err=True)
    with stop_on_ctrl_c(stop):
        summary = runner.run()
    click.echo(
        f"run {table}: {summary.records} records backed up in {summary.batches} batches, "
        f"{summary.failed_batches} batches retried, {summary.shards_finished} shards finished, "
        f"{len(summary.gaps)} gaps; stopped ({summary.stopped})"
    )
    if summary.gaps:
        for gap in summary.gaps:
            click.echo(f"gap: {gap.describe()}", err=True)
        raise click.exceptions.Exit(1)
