"""Options and plumbing shared by every command."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import click

from ddb_backup.aws.clients import make_client
from ddb_backup.errors import UserError
from ddb_backup.format.version_meta import Tenancy
from ddb_backup.restore.tenancy import from_option
from ddb_backup.settings import SettingsError, clean_prefix
from ddb_backup.store.native import open_s3_store
from ddb_backup.store.retry import RetryingStore
from ddb_backup.store.s3 import expect_bucket_owner

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Aws:
    """Where to reach AWS: explicit options beat AWS_ENDPOINT_URL / AWS_REGION / AWS_PROFILE."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    expected_bucket_owner: str | None = None  # every S3 request carries it (--expected-bucket-owner)

    def client(self, service: str, **options: Any) -> Any:
        session = boto3.session.Session(profile_name=self.profile) if self.profile else None
        client = make_client(service, endpoint_url=self.endpoint_url, region=self.region, session=session, **options)
        return expect_bucket_owner(client, self.expected_bucket_owner) if service == "s3" else client

    def store(self, bucket: str, **options: Any) -> RetryingStore:
        """The bucket, its reads retried past botocore's own retries (``store.retry``)."""
        owner = self.expected_bucket_owner
        return RetryingStore(open_s3_store(self.client("s3", **options), bucket, expected_bucket_owner=owner))


class Rate(click.ParamType):
    """A rate in capacity units per second: a finite number of at least ``LOWEST_RATE`` (``nan``, ``inf``,
    0, negatives and 1e-300, which would wait 1e300 s for one unit, are usage errors)."""

    name = "rate"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number, e.g. 500", param, ctx)
        if not math.isfinite(number) or number < LOWEST_RATE:
            self.fail(
                f"{value!r} is not a finite number of at least {LOWEST_RATE:g} unit a second, e.g. 500", param, ctx
            )
        return number


LOWEST_RATE = 1.0  # DynamoDB's smallest provisioned capacity; below it one large item waits for minutes
RATE = Rate()


class LocalFile(click.Path):
    """A local file the command writes (``--checkpoint``, ``--rejects``): as ``click.Path(dir_okay=False)``,
    and a usage error for what no file name can hold (a NUL character) instead of a ValueError later, or
    for a path the local-path rule refuses (``preflight.check_local_path``: its folder must exist)."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\x00" in value:
            self.fail(f"{value!r} holds a NUL character, which no file name can", param, ctx)
        path = super().convert(value, param, ctx)
        if isinstance(value, str):
            from ddb_backup.cli.preflight import check_local_path

            option = param.opts[0] if param is not None and param.opts else "the path"
            check_local_path(option, value, folder=False)  # a UserError: one line and a hint, as run's
        return path


TABLE_NAME_RULE = "3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'"
_TABLE_NAME = re.compile(r"[a-zA-Z0-9_.-]{3,255}")


class TableName(click.ParamType):
    """A DynamoDB table name (``TABLE_NAME_RULE``, from the DynamoDB Developer Guide, "Naming rules"):
    anything else is a usage error before any AWS call."""

    name = "table"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if isinstance(value, str) and _TABLE_NAME.fullmatch(value):
            return value
        self.fail(f"{value!r} is not a DynamoDB table name ({TABLE_NAME_RULE})", param, ctx)


TABLE_NAME = TableName()


class Count(click.IntRange):
    """A whole number of threads, segments or processes between ``low`` and ``high``: the bounds show in
    the option's help (``[1<=x<=256]``), and a value outside them is a usage error, not a million threads."""

    name = "count"

    def __init__(self, low: int, high: int) -> None:
        super().__init__(low, high)


MAX_THREADS = 256  # concurrent requests or scan segments in one process (a thread each)
MAX_PROCESSES = 1024  # restore --total-segments: processes or machines sharing one restore
THREADS = Count(1, MAX_THREADS)
PROCESSES = Count(1, MAX_PROCESSES)


def _account_id(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9]{12}", value.strip()):
        raise click.BadParameter(f"{value!r} is not an AWS account id (12 digits), e.g. 123456789012")
    return value.strip() if value else None


def aws_options(command: F) -> F:
    """``--endpoint-url``, ``--region``, ``--profile``, ``--expected-bucket-owner``; the command receives
    ``aws: Aws``."""

    @click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", help="AWS endpoint (e.g. an emulator's URL).")
    @click.option("--region", envvar="AWS_REGION", help="AWS region (default: AWS_REGION / the profile's).")
    @click.option("--profile", envvar="AWS_PROFILE", help="AWS profile name.")
    @click.option(
        "--expected-bucket-owner",
        envvar="DDB_BACKUP_EXPECTED_BUCKET_OWNER",
        callback=_account_id,
        metavar="ACCOUNT_ID",
        help="Account that must own every bucket this command uses; S3 refuses a bucket of another owner.",
    )
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        endpoint_url: str | None,
        region: str | None,
        profile: str | None,
        expected_bucket_owner: str | None,
        **kw: Any,
    ) -> Any:
        return command(*args, aws=Aws(endpoint_url, region, profile, expected_bucket_owner), **kw)

    return wrapper  # type: ignore[return-value]


def _backup_prefix(_: click.Context, __: click.Parameter, value: str) -> str:
    """``--prefix`` as the function takes it (``settings.clean_prefix``: no ``.``/``..`` folders, no
    control characters, which S3's XML listings cannot carry, short enough for S3's 1,024-byte keys)."""
    try:
        clean_prefix(value)
    except SettingsError as err:
        raise click.BadParameter(str(err), param_hint="'--prefix'") from err
    return value


_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_LEGACY_BUCKET_NAME = re.compile(r"(?=.*[A-Z_])[A-Za-z0-9._-]{3,255}")  # us-east-1 before March 2018
_IP_ADDRESS = re.compile(r"[0-9]+(\.[0-9]+){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
BUCKET_NAME_RULE = (
    "3-63 characters of a-z, 0-9, '.', '-', starting and ending with a letter or digit "
    "(or a legacy us-east-1 name: up to 255 of A-Z, a-z, 0-9, '.', '-', '_')"
)


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an S3 general purpose bucket's name, or None: the one rule for every bucket
    argument (``--bucket``, ``s3://BUCKET/...`` in ``--to`` and ``--checkpoint``), from the S3 User
    Guide, "General purpose bucket naming rules". A name of the legacy us-east-1 rule (up to 255
    characters, capitals and underscores allowed; no longer creatable since 2018) is accepted: the
    original tool's users may keep such a bucket, and a missing one is then "does not exist"."""
    if _LEGACY_BUCKET_NAME.fullmatch(name) and not _BUCKET_NAME.fullmatch(name):
        return None
    if not _BUCKET_NAME.fullmatch(name):
        return BUCKET_NAME_RULE
    if ".." in name:
        return "two dots in a row"
    if _IP_ADDRESS.fullmatch(name):
        return "it is formatted as an IP address"
    reserved = [part for part in _RESERVED_PREFIXES if name.startswith(part)]
    reserved += [part for part in _RESERVED_SUFFIXES if name.endswith(part)]
    return f"{reserved[0]!r} is reserved by S3" if reserved else None


def bucket_options(command: F) -> F:
    """``--bucket`` (required) and ``--prefix``; defaults from the function's own environment names,
    ``BackupBucket`` and ``BackupPrefix``."""
    command = click.option(
        "--prefix",
        envvar="BackupPrefix",
        default="",
        show_default=False,
        callback=_backup_prefix,
        help="The BackupPrefix the function uses (default: env BackupPrefix, else none).",
    )(command)
    return click.option(
        "--bucket", envvar="BackupBucket", required=True, help="The backup bucket (default: env BackupBucket)."
    )(command)


def naming_options(*, detect: bool = False) -> Callable[[F], F]:
    """``--plain-text/--no-plain-text`` and ``--tenant-column``: the function's object naming settings.
    With ``detect``, ``--plain-text`` defaults to None (the command looks at the bucket)."""
    plain_help = "Object names as the function writes them (PlainTextKeyAsFilename)"
    plain_help += "; default: detected from the bucket." if detect else "."

    def decorate(command: F) -> F:
        command = click.option("--tenant-column", default=None, help="The function's MultiTenancyColumn, if set.")(
            command
        )
        return click.option(
            "--plain-text/--no-plain-text", default=None if detect else False, show_default=not detect, help=plain_help
        )(command)

    return decorate


TENANCY_HELP = (
    "The table's MultiTenancyColumn, for objects that do not record it (the original tool's); default: what "
    "the saved schema or our own versions record (docs/format.md)."
)


def tenancy_options(*, column: bool = True) -> Callable[[F], F]:
    """``--tenant-column NAME`` (unless the command has it already: ``column=False``) and ``--no-tenants``:
    the table's tenant attribute for objects without our record (``tenancy.py``); ``table_tenancy`` reads
    them."""

    def decorate(command: F) -> F:
        command = click.option(
            "--no-tenants",
            is_flag=True,
            help="The table has no MultiTenancyColumn: objects in sub-folders are not its items.",
        )(command)
        if column:
            command = click.option("--tenant-column", default=None, help=TENANCY_HELP)(command)
        return command

    return decorate


def table_tenancy(tenant_column: str | None, no_tenants: bool) -> Tenancy | None:
    """What ``tenancy_options`` say (None: neither given); both at once is a ``UserError``."""
    if no_tenants and tenant_column:
        raise UserError("--tenant-column and --no-tenants contradict each other", "give one of them")
    return from_option(tenant_column or None, no_tenants)
