"""The ``ddb-backup`` command: a thin layer over the library (one module per command)."""

from __future__ import annotations

import sys

import click

from ddb_backup import __version__
from ddb_backup.cli.demo import demo


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ddb-backup")
def cli() -> None:
    """Continuous DynamoDB backups in a versioned S3 bucket, and exact point-in-time restore.

    \b
    Exit codes: 0 success, 1 a check found a difference (verify, demo), 2 a usage or
    user error (the message says how to fix it), 3 an AWS or storage error.
    """


cli.add_command(demo)


def main() -> None:
    cli(prog_name="ddb-backup")
    sys.exit(0)
