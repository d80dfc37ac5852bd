"""``ddb-backup demo``."""

from __future__ import annotations

import click

from ddb_backup.format.version_meta import epoch_to_iso


@click.command()
@click.option("--chaos", is_flag=True, help="Inject S3 faults (10%) and DynamoDB throttling (30%) throughout.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the workload (and of the chaos).")
def demo(chaos: bool, seed: int) -> None:
    """Run the whole loop on the embedded emulator (moto on 127.0.0.1) and check it.

    A table whose first rows predate its stream, a full backup of them, inserts, updates and deletes
    over several seconds, the stream runner, then restores to three moments into new tables, each
    compared with what the table held at that moment. Nothing is left running.

    \b
    Example:
      ddb-backup demo
      ddb-backup demo --chaos
    \b
    Exit codes: 0 every restore matched, 1 a restore did not match, 3 an AWS or storage error,
    130 interrupted by Ctrl-C, 141 stdout closed early (e.g. `| head`).
    """
    from ddb_backup.lab.demo import run_demo

    checks = run_demo(click.echo, chaos=chaos, seed=seed)
    click.echo("")
    click.echo(
        f"{'moment':<8} {'time':<26} {'items':>6} {'restored':>9} {'versions':>9} {'reads':>6} {'seconds':>8}  match"
    )
    for check in checks:
        click.echo(
            f"{check.label:<8} {epoch_to_iso(check.at):<26} {check.expected:>6} {check.restored:>9} "
            f"{check.versions:>9} {check.metadata_reads:>6} {check.seconds:>8.2f}  {'yes' if check.match else 'NO'}"
        )
    if not all(check.match for check in checks):
        click.echo("demo: a restore did not match the table at its moment", err=True)
        raise click.exceptions.Exit(1)
    click.echo("demo: every restore matched; nothing left running")
