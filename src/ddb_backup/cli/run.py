"""``ddb-backup run``: the stream runner, for use without Lambda."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from ddb_backup.cli import preflight
from ddb_backup.cli.common import TABLE_NAME, Aws, aws_options, bucket_options, naming_options
from ddb_backup.cli.output import echo_json, json_option

START_AT = {"trim-horizon": "TRIM_HORIZON", "latest": "LATEST"}
START_NOTES = {
    "trim-horizon": "every shard starts at the oldest record the stream keeps (TRIM_HORIZON, up to 24 h back); "
    "records already backed up are written again as duplicate versions (harmless). "
    "Use --from latest to back up new changes only",
    "latest": "every shard starts at its newest record (LATEST): changes made before now are not read",
}
STOP_REASONS = {"idle": "stopped: every shard was idle (--until-idle)", "stopped": "stopped on request (Ctrl-C)"}


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
@click.option("--table", type=TABLE_NAME, required=True, help="The table whose stream to back up.")
@click.option("--until-idle", is_flag=True, help="Stop once every open shard has no new records.")
@click.option(
    "--checkpoint",
    metavar="PATH_OR_S3URL",
    default=None,
    help="Where to remember progress (default: s3://BUCKET/[PREFIX/]~ddb-backup/checkpoints/TABLE.json).",
)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True, help="Records per batch.")
@click.option(
    "--from",
    "start_from",
    type=click.Choice(sorted(START_AT)),
    default="trim-horizon",
    show_default=True,
    help="Where a shard the checkpoint does not know starts: the oldest record the stream keeps "
    "(up to 24 h back) or only changes made from now on.",
)
@naming_options()
@json_option
@aws_options
def run(
    aws: Aws,
    bucket: str,
    prefix: str,
    table: str,
    until_idle: bool,
    checkpoint: str | None,
    batch_size: int,
    start_from: str,
    plain_text: bool,
    tenant_column: str | None,
    as_json: bool,
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
    A new checkpoint starts every shard at --from: trim-horizon (the default) re-reads what the
    stream still keeps, so records the function already backed up become duplicate versions
    (harmless: a replay never makes an older image win); latest skips them.

    \b
    Exit codes: 0 stopped cleanly, 1 stopped cleanly but records were lost before they could be read
    (take a full backup), 2 a usage error, 3 an AWS error or a batch that kept failing, 5 the
    bucket (--bucket, or the --checkpoint's) does not exist, 130 a second Ctrl-C (the first stops
    cleanly: 0), 141 stdout closed early (e.g. `| head`).
    """
    from ddb_backup.capture.batch_response import capture_handler
    from ddb_backup.capture.stream_checkpoint import default_location, open_checkpoints
    from ddb_backup.capture.stream_runner import RunnerOptions, StreamRunner
    from ddb_backup.capture.stream_shards import stream_arn_for
    from ddb_backup.handler import build_runtime
    from ddb_backup.settings import Settings, clean_prefix

    if checkpoint is not None and not checkpoint.startswith("s3://"):
        preflight.check_local_path("--checkpoint", checkpoint, folder=False)
    settings = Settings(
        bucket, clean_prefix(prefix), plain_text, tenant_column or None, expected_bucket_owner=aws.expected_bucket_owner
    )
    dynamodb, s3 = aws.client("dynamodb"), aws.client("s3")
    for option, name in (("--bucket", bucket), ("--checkpoint", preflight.s3_url_bucket(checkpoint or ""))):
        if name:
            preflight.check_bucket_name(name, option)  # before any request: names S3 might only call missing
    stream_arn = stream_arn_for(dynamodb, table, needs_old_image=settings.tenant_column is not None)
    preflight.check_bucket(s3, bucket)
    preflight.check_s3_url(s3, checkpoint or "", "--checkpoint")
    runtime = build_runtime(settings, s3_client=s3, dynamodb_client=dynamodb)
    checkpoints = open_checkpoints(checkpoint or default_location(bucket, settings.prefix, table), lambda: s3)
    stop = threading.Event()
    runner = StreamRunner(
        aws.client("dynamodbstreams"),
        stream_arn,
        capture_handler(runtime.capture),
        checkpoints,
        RunnerOptions(batch_size=batch_size, until_idle=until_idle, start_at=START_AT[start_from]),
        stop=stop,
        notify=lambda message: click.echo(message, err=True),
    )
    click.echo(f"run {table}: reading {stream_arn}; checkpoint {checkpoints.location}", err=True)
    if checkpoints.load() is None:
        click.echo(f"run {table}: no checkpoint yet: {START_NOTES[start_from]}", err=True)
    with stop_on_ctrl_c(stop):
        summary = runner.run()
    stopped = STOP_REASONS.get(summary.stopped, summary.stopped)
    if as_json:
        echo_json(
            {
                "table": table,
                "stream_arn": stream_arn,
                "checkpoint": checkpoints.location,
                "records": summary.records,
                "batches": summary.batches,
                "failed_batches": summary.failed_batches,
                "shards_finished": summary.shards_finished,
                "gaps": [gap.describe() for gap in summary.gaps],
                "stopped": summary.stopped,
            }
        )
    else:
        click.echo(
            f"run {table}: {summary.records} records backed up in {summary.batches} batches, "
            f"{summary.failed_batches} batches retried, {summary.shards_finished} shards finished, "
            f"{len(summary.gaps)} gaps; {stopped}"
        )
    if summary.gaps:
        for gap in summary.gaps:
            click.echo(f"gap: {gap.describe()}", err=True)
        raise click.exceptions.Exit(1)
