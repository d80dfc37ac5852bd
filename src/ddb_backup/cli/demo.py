"""``ddb-backup demo``."""

from __future__ import annotations

import click


@click.command()
@click.option("--md5-names", is_flag=True, help="Name objects by MD5 of the key instead of plain text.")
def demo(md5_names: bool) -> None:
    """Run capture for real on the embedded emulator (moto on 127.0.0.1) and show the bucket.

    \b
    Example:
      ddb-backup demo
    """
    from ddb_backup.demo import run_capture_demo

    count = run_capture_demo(click.echo, plain_text=not md5_names)
    click.echo(f"demo: {count} versions in the bucket; nothing left running")
