"""The ``ddb-backup`` command: a thin layer over the library (one module per command).

Library errors become one line on stderr and an exit code; no traceback for what a user can fix.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from ddb_backup import __version__
from ddb_backup.aws import clients as aws
from ddb_backup.cli.demo import demo
from ddb_backup.cli.diff import diff
from ddb_backup.cli.export import export
from ddb_backup.cli.full_backup import full_backup
from ddb_backup.cli.history import history
from ddb_backup.cli.preflight import NoSuchBucket
from ddb_backup.cli.restore import restore_command
from ddb_backup.cli.run import run
from ddb_backup.cli.tables import tables
from ddb_backup.cli.verify import verify
from ddb_backup.errors import BackupError, UserError
from ddb_backup.format.keys import InvalidKeyError
from ddb_backup.settings import SettingsError
from ddb_backup.store import StoreError, StoreUnreachable

USER_ERRORS = (UserError, SettingsError, InvalidKeyError)
AWS_ERRORS = (BackupError, StoreError, BotoCoreError, ClientError)
INTERRUPTED = 130  # Ctrl-C, as shells report a process ended by SIGINT (128 + 2)
CLOSED_STDOUT = 141  # stdout closed early (`| head`), as shells report SIGPIPE (128 + 13)
EXIT_CODES = (0, 1, 2, 3, 4, 5, INTERRUPTED, CLOSED_STDOUT)  # the documented set (the group's help)
CONNECTION_ERRORS = (*aws.UNREACHABLE, StoreUnreachable)  # none reached, or hung up (aws/clients.py)


def _unreachable(err: BaseException) -> BaseException | None:
    """The connection failure behind ``err`` (itself or a cause), if it is one: no connection made, or one
    the server closed without an answer."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, CONNECTION_ERRORS):
            return seen
        seen = seen.__cause__
    return None


def _hint_of(err: BaseException) -> str:
    return str(getattr(err, "hint", "") or "")


def _missing_bucket(err: BaseException) -> str | None:
    """The bucket S3 said does not exist (``NoSuchBucket``) behind ``err``, if that is what it is."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, ClientError) and seen.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return str(seen.response["Error"].get("BucketName") or "?")
        seen = seen.__cause__
    return None


def _silence_stdout() -> None:
    """After the reader of stdout went away: send what is still buffered nowhere, so that flushing at exit
    does not fail again (Python's own "Exception ignored ... BrokenPipeError" line)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's runner)
        pass


class Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        aws.notify = lambda message: click.echo(f"note: {message}", err=True)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # restore and run handle their own Ctrl-C; everything else ends here
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except click.Abort as err:  # click's prompts turn Ctrl-C into Abort (end of input stays a decline)
            if not isinstance(err.__context__, KeyboardInterrupt):
                raise
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(CLOSED_STDOUT)
        except USER_ERRORS as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(getattr(err, "exit_code", 2))  # NothingMatches: 5
        except AWS_ERRORS as err:
            unreachable, missing = _unreachable(err), _missing_bucket(err)
            if missing is not None:  # found missing after the preflight, e.g. deleted meanwhile
                click.echo(
                    f"error: the bucket {missing!r} does not exist (Try: check --bucket, --to, --checkpoint)", err=True
                )
                ctx.exit(NoSuchBucket.exit_code)
            if unreachable is not None:
                then = "; then run the same command again with --resume" if "--resume" in _hint_of(err) else ""
                click.echo(
                    f"error: cannot connect to AWS: {unreachable} "
                    f"(Try: check --endpoint-url / AWS_ENDPOINT_URL, --region and the network{then})",
                    err=True,
                )
            else:
                hint = "" if getattr(err, "hint", None) else " (Try: check credentials, region and --endpoint-url)"
                click.echo(f"error: {err}{hint}", err=True)
            ctx.exit(3)
        finally:
            aws.notify = None


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ddb-backup")
def cli() -> None:
    """Continuous DynamoDB backups in a versioned S3 bucket, and exact point-in-time restore.

    \b
    Exit codes: 0 success, 1 a check found a difference (verify, demo) or the stream
    lost records before they were read (run), 2 a usage or user error (the message says
    how to fix it), 3 an AWS or storage error (also: AWS cannot be reached), 4 restored
    except items the target refused (restore: the rejects file), 5 the backup holds nothing
    for the --bucket, --prefix, --table, --tenant or --key given, or nothing at a TIME before
    the table's first write, or a --to/--checkpoint bucket does not exist (the message says what
    it does hold), 130 interrupted by Ctrl-C (restore: --resume; run: a first Ctrl-C stops
    cleanly, exit 0), 141 stdout was closed before the output was written (e.g. `| head -1`).
    --bucket and --prefix default to the env names BackupBucket and BackupPrefix.
    Each command's --help has an example and its own exit codes.
    """


cli.add_command(demo)
cli.add_command(full_backup)
cli.add_command(run)
cli.add_command(history)
cli.add_command(diff)
cli.add_command(verify)
cli.add_command(export)
cli.add_command(tables)
cli.add_command(restore_command, name="restore")


def main() -> None:
    cli(prog_name="ddb-backup")
    sys.exit(0)
