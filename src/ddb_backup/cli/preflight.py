"""Checks every command makes before it touches anything: does the bucket hold what the user named?

A wrong ``--bucket``, ``--prefix``, ``--table``, ``--tenant`` or ``--key`` must never look like success
(an empty restore, zero counts, "everything missing"). Each check costs one or a few listing requests;
when nothing matches it raises ``NothingMatches`` (exit code 5) naming what the bucket does hold
that is nearest: tables under the prefix, prefixes that hold the table, the table's tenants.
Rules of the layout: docs/format.md ("Object keys").
"""

from __future__ import annotations

import difflib
import itertools
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError, ParamValidationError

from ddb_backup.cli.common import bucket_name_problem
from ddb_backup.errors import UserError
from ddb_backup.format import aliases
from ddb_backup.format import keys as k
from ddb_backup.format.version_meta import Tenancy, epoch_to_iso
from ddb_backup.inspect.tables import OWN_FOLDER, backup_root, folders, holds_table_item, table_names
from ddb_backup.restore.locate import candidate_object_keys, find_object_key
from ddb_backup.restore.resolve import resolver_for
from ddb_backup.store import ObjectStore, StoreError

SHOWN = 8  # names listed in a suggestion
LAST_MODIFIED_SLACK = 1.0  # S3's LastModified has whole seconds (moto rounds it up): a write may look later
LOOKED_AT = 200  # folders examined when looking for suggestions (a listing request each)


class NothingMatches(UserError):
    """The bucket holds nothing for the table, prefix, tenant or key given; exit code 5."""

    exit_code = 5


class NoSuchBucket(NothingMatches):
    """The bucket itself does not exist."""


def check_bucket(s3: Any, bucket: str, option: str = "--bucket") -> None:
    """The bucket exists and we may read it (HeadBucket), else a one-line error about the bucket itself,
    naming the ``option`` that gave it (``--bucket``; ``--to`` or ``--checkpoint`` for an ``s3://`` URL).

    Connection failures propagate (botocore's ``EndpointConnectionError``): the CLI reports them as such.
    """
    check = f"check {option}" + (" (or BackupBucket)" if option == "--bucket" else "")
    check_bucket_name(bucket, option)
    try:
        s3.head_bucket(Bucket=bucket)
    except ParamValidationError as err:
        raise UserError(f"{option} {bucket!r} is not a valid S3 bucket name", check) from err
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchBucket", "NotFound"}:
            raise NoSuchBucket(f"the bucket {bucket!r} does not exist", check) from err
        if code in {"403", "AccessDenied", "Forbidden"}:
            raise UserError(
                f"access to the bucket {bucket!r} is denied",
                f"{check}, --profile and the credentials' s3:ListBucket permission",
            ) from err
        raise


def check_bucket_name(bucket: str, option: str) -> None:
    """The one bucket-name rule (``cli.common.bucket_name_problem``), a ``UserError`` naming ``option``: S3
    itself might only say such a bucket "does not exist"."""
    problem = bucket_name_problem(bucket)
    if problem is not None:
        check = f"check {option}" + (" (or BackupBucket)" if option == "--bucket" else "")
        raise UserError(f"{option} {bucket!r} is not a valid S3 bucket name ({problem})", check)


def s3_url_bucket(url: str) -> str:
    """The bucket of ``s3://BUCKET/...``; "" for anything else."""
    return url.removeprefix("s3://").partition("/")[0] if url.startswith("s3://") else ""


def check_s3_url(s3: Any, url: str, option: str) -> None:
    """``check_bucket`` for the bucket of an ``s3://BUCKET/...`` option (``--to``, ``--checkpoint``);
    anything else (a local path, a URL without a bucket) is left to the option's own checks."""
    bucket = url.removeprefix("s3://").partition("/")[0] if url.startswith("s3://") else ""
    if bucket:
        check_bucket(s3, bucket, option)


def _where(prefix: str) -> str:
    root = backup_root(prefix)
    return f"under the prefix {root.rstrip('/')!r}" if root else "at the bucket's top level (no --prefix)"


def _first(store: ObjectStore, folder: str) -> bool:
    return next(iter(store.list_versions(folder)), None) is not None


def _nearest(name: str, names: Sequence[str]) -> list[str]:
    return difflib.get_close_matches(name, names, n=3, cutoff=0.6)


def _listing(names: Iterable[str]) -> str:
    shown = list(itertools.islice(names, SHOWN + 1))
    text = ", ".join(repr(name) for name in shown[:SHOWN])
    return text + (", ..." if len(shown) > SHOWN else "")


def prefixes_holding(store: ObjectStore, table: str, *, limit: int = LOOKED_AT) -> list[str]:
    """Prefixes (one or two folder levels deep, and none) under which the bucket holds ``table``."""
    found = [""] if _first(store, k.table_prefix("", table)) else []
    for first in itertools.islice(folders(store, ""), limit):
        if first == OWN_FOLDER:
            continue
        if _first(store, k.table_prefix(first, table)):
            found.append(first)
            continue
        for second in itertools.islice(folders(store, f"{first}/"), 20):
            if _first(store, k.table_prefix(f"{first}/{second}", table)):
                found.append(f"{first}/{second}")
    return found


def tenant_folders(tenant: str | None) -> list[str]:
    """The folders (under a table's) that may hold ``tenant`` (the escaped segment): ours, and the raw
    value the original tool wrote, unless it holds a control character: S3's XML listings cannot carry
    one (moto answers 500, retried for 20 s), and our writers escape them."""
    if tenant is None:
        return [""]
    raw = unquote(tenant)
    usable = raw != tenant and not any(unicodedata.category(char) == "Cc" for char in raw)
    return [tenant + "/", raw + "/"] if usable else [tenant + "/"]


def _table_held(store: ObjectStore, prefix: str, table: str, tenant: str | None = None) -> bool:
    """A version under one of the table's folders (``aliases.table_folders``: the original tool's leading
    ``/`` too), or of the tenant's (escaped or, as the original tool wrote it, raw)."""
    for folder in aliases.table_folders(prefix, table):
        segments = tenant_folders(tenant)
        if any(_first(store, folder + segment) for segment in segments):
            return True
    return False


def check_table(store: ObjectStore, prefix: str, table: str) -> None:
    """The bucket holds at least one version under ``[prefix/]table/``; else ``NothingMatches`` that names
    the tables under this prefix (nearest first) or the prefixes that hold this table."""
    if _table_held(store, prefix, table):
        return
    tables = [name for name in itertools.islice(table_names(store, prefix), LOOKED_AT)]
    message = f"the backup holds nothing for the table {table!r} {_where(prefix)}"
    hints = []
    nearest = _nearest(table, tables)
    if nearest:
        hints.append(f"did you mean --table {nearest[0]!r}?")
    elsewhere = prefixes_holding(store, table)
    if elsewhere:
        shown = ", ".join("(none)" if p == "" else repr(p) for p in elsewhere[:SHOWN])
        hints.append(f"the table is backed up under --prefix {shown}")
    if tables:
        hints.append(f"tables {_where(prefix)}: {_listing(tables)}")
    elif not elsewhere:
        tops = [unquote(name) for name in itertools.islice(folders(store, ""), LOOKED_AT) if name != OWN_FOLDER]
        hints.append(
            f"the bucket's top-level folders: {_listing(tops)} (see `ddb-backup tables --prefix NAME`)"
            if tops
            else _empty_bucket_hint(store)
        )
    raise NothingMatches(message, "; ".join(hints))


def _empty_bucket_hint(store: ObjectStore) -> str:
    """What to say of a bucket that holds nothing at all: a bucket without versioning is not a backup
    bucket (the function refuses to write to one)."""
    try:
        versioned = store.versioning_enabled()
    except (StoreError, ClientError):  # GetBucketVersioning may be denied: the hint is only a hint
        versioned = True
    if not versioned:
        return "the bucket holds no backup at all and has no versioning, which a backup bucket needs: check --bucket"
    return "the bucket holds no backup at all: check --bucket"


def tenants_of(store: ObjectStore, prefix: str, table: str) -> list[str]:
    """The tenant folders (escaped segments) of a table: the folders right under its own folder."""
    return list(itertools.islice(folders(store, k.table_prefix(prefix, table)), LOOKED_AT))


def check_tenant(store: ObjectStore, prefix: str, table: str, tenant: str | None) -> None:
    """``check_table``, then, with ``tenant`` (the escaped segment), that the table has tenants (when its
    tenant attribute is known: ``restore/tenancy.py``) and that the tenant's folder holds a version."""
    check_table(store, prefix, table)
    if tenant is None:
        return
    no_tenants = resolver_for(store, prefix, table).table_tenancy().tenancy == Tenancy(None)
    if not no_tenants and _table_held(store, prefix, table, tenant):
        return
    # a table with no tenant attribute: its sub-folders (strays, another stack's table) are not tenants
    tenants = [] if no_tenants else tenants_of(store, prefix, table)
    shown = unquote(tenant)
    if not tenants:
        raise NothingMatches(
            f"the table {table!r} has no tenants in the backup, so none is {shown!r}",
            "drop --tenant (the function does not use MultiTenancyColumn for this table)",
        )
    # each tenant as --tenant takes it; a folder no --tenant text reaches (the text "%none" is stored under
    # "%25none", and --tenant %none means items without a tenant) is shown as its folder, never suggested
    names = [unquote(name) for name in tenants if k.tenant_segment_for_text(unquote(name)) == name]
    folders_only = [f"folder {name}" for name in tenants if k.tenant_segment_for_text(unquote(name)) != name]
    nearest = _nearest(shown, names)
    hint = f"did you mean --tenant {nearest[0]!r}? " if nearest else ""
    what = "items without a tenant (--tenant %none)" if tenant == k.MISSING_TENANT_SEGMENT else f"tenant {shown!r}"
    raise NothingMatches(
        f"the backup of {table!r} holds no {what}", f"{hint}its tenants: {_listing([*names, *folders_only])}".strip()
    )


def first_write_after(
    store: ObjectStore, prefix: str, table: str, at: float, tenant: str | None = None
) -> float | None:
    """The table's (or tenant's, the escaped segment) earliest S3 write time when every version was written
    after ``at`` (epoch seconds); None as soon as one was written at or before it, or when there is none.
    One listing of the table's folders at most, stopped at the first version written by ``at`` (give or take
    ``LAST_MODIFIED_SLACK``)."""
    earliest: float | None = None
    segments = tenant_folders(tenant)
    for folder in aliases.table_folders(prefix, table):
        for version in itertools.chain.from_iterable(store.list_versions(folder + seg) for seg in segments):
            written = version.last_modified.timestamp()
            if written <= at + LAST_MODIFIED_SLACK:
                return None
            earliest = written if earliest is None else min(earliest, written)
    return earliest


def before_first_write(table: str, first: float, at: float, option: str) -> NothingMatches:
    """The error for a TIME (``option`` gave it) at which the backup holds nothing because it precedes the
    table's first write (S3 write time; a change's event time is never later than its write)."""
    return NothingMatches(
        f"the backup of {table!r} holds nothing before its first write at {epoch_to_iso(first)}, "
        f"and {option} {epoch_to_iso(at)} is earlier",
        f"give {option} after {epoch_to_iso(first)}",
    )


def check_key_attributes(key: Mapping[str, Any], schema: k.KeySchema | None) -> None:
    """A ``--key`` names exactly the table's key attributes (when the schema is known)."""
    if schema is None:
        return
    wanted, given = set(schema.attribute_names), set(key)
    missing, extra = sorted(wanted - given), sorted(given - wanted)
    if missing or extra:
        parts = [f"lacks the {'range' if name == schema.range_key else 'hash'} key {name!r}" for name in missing]
        parts += [f"has {name!r}, which is not a key attribute" for name in extra]
        raise UserError(
            f"--key {' and '.join(parts)}",
            f"give exactly the key attributes {', '.join(schema.attribute_names)}",
        )


def check_keys(
    store: ObjectStore,
    prefix: str,
    table: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    tenant: str | None = None,
    schema: k.KeySchema | None = None,
) -> None:
    """Each key has a version in the backup (under its MD5 or plain-text name), else ``NothingMatches``;
    without ``tenant`` on a table known to have tenants (``restore/tenancy.py``), one saying to name the
    item's tenant, with a few of the table's tenants."""
    for key in keys:
        check_key_attributes(key, schema)
        candidates = candidate_object_keys(prefix, table, key, tenant=tenant, schema=schema)
        if find_object_key(store, candidates) is None:
            if tenant is None:
                _check_tenant_named(store, prefix, table, key, schema)
            hint = "check --key, --tenant and --prefix"
            if schema is None and len(key) > 1:
                hint += "; plain-text names need the key schema: let the command reach the table (DescribeTable)"
            raise NothingMatches(f"the backup of {table!r} holds no version of the item {k.key_json(dict(key))}", hint)


def _check_tenant_named(
    store: ObjectStore, prefix: str, table: str, key: Mapping[str, Any], schema: k.KeySchema | None
) -> None:
    learnt = resolver_for(store, prefix, table, schema).table_tenancy()
    if learnt.tenancy is None or learnt.tenancy.attribute is None:
        return  # unknown, or no tenants: the plain answer
    names = [unquote(name) for name in tenants_of(store, prefix, table)]
    raise NothingMatches(
        f"the table {table!r} keeps its items in tenant folders (tenant attribute {learnt.tenancy.attribute!r}, "
        f"from {learnt.source}): name the item {k.key_json(dict(key))} with --tenant",
        f"its tenants: {_listing(names)}" if names else "give the item's tenant value",
    )


def no_tables(store: ObjectStore, bucket: str, prefix: str, prefixes: Sequence[str] = ()) -> None:
    """``tables`` found no table: ``NothingMatches`` naming the prefixes it found in their place (folders
    that ``looks_like_prefix``), else the bucket's top-level folders."""
    where = backup_root(prefix)
    if prefixes:
        hint = "give one as --prefix: " + ", ".join(f"--prefix {where}{name}" for name in prefixes[:SHOWN])
        hint += ", ..." if len(prefixes) > SHOWN else ""
        found = f"; it holds the prefixes {_listing(prefixes)}"
        raise NothingMatches(f"the bucket {bucket!r} holds no tables {_where(prefix)}{found}", hint)
    tops = [unquote(name) for name in itertools.islice(folders(store, ""), LOOKED_AT) if name != OWN_FOLDER]
    hint = f"the bucket's top-level folders: {_listing(tops)}; give one as --prefix" if tops else "check --bucket"
    raise NothingMatches(f"the bucket {bucket!r} holds no tables {_where(prefix)}", hint)


def looks_like_prefix(store: ObjectStore, prefix: str, name: str) -> bool:
    """Whether the folder ``name`` under ``prefix`` is a BackupPrefix rather than a table: it holds our
    own folder (``~ddb-backup/``: saved schemas, checkpoints), or folders two levels down (a table's
    folder holds objects and tenant folders only; our names escape ``/``) whose first item is not the
    table's where it sits (the original tool's plain-text names do not escape ``/``:
    ``inspect.tables.holds_table_item``, one GET). A prefix whose tables have no tenants and no saved
    schema cannot be told from a table with tenants."""
    folder = k.table_prefix(prefix, name)
    if _first(store, f"{folder}{OWN_FOLDER}/"):
        return True
    for child in folders(store, folder):
        grandchild = next(folders(store, f"{folder}{child}/"), None)
        if grandchild is not None:
            return not holds_table_item(store, prefix, name, f"{folder}{child}/{grandchild}/")
    return False


def check_local_path(option: str, text: str, *, folder: bool) -> None:
    """A local path a command writes: a file (``--checkpoint``, ``--rejects``) or, with ``folder``,
    ``export --to``'s folder. One rule for all of them (README, "Local files"): the path is not empty
    and not the other kind, and the folder it goes in exists and may be written; the command creates the
    file or folder itself, never the folders above it. Else a ``UserError`` (exit 2), raised before the
    command touches anything."""
    kind = "folder" if folder else "file"
    if not text.strip():
        raise UserError(f"{option} is empty", f"give a {kind} path" + (" or s3://BUCKET/PREFIX" if folder else ""))
    if "\x00" in text:
        raise UserError(f"{option} {text!r} holds a NUL character, which no file name can", f"give a {kind} path")
    path = Path(text)
    if path.exists() and path.is_dir() != folder:
        other = "a folder" if path.is_dir() else "a file"
        raise UserError(f"{option} {text!r} is {other}, not a {kind}", f"give a {kind} path")
    parent = path.absolute().parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                raise UserError(f"{option} {text!r} lies below {str(above)!r}, a file", f"give a {kind} path")
            break
    if not parent.is_dir():
        raise UserError(
            f"{option} {text!r}: the folder {str(parent)!r} does not exist",
            f"create it first (mkdir -p {str(parent)!r}); no command creates the folders above its {kind}",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {text!r}: the folder {str(parent)!r} may not be written", f"give a {kind} path")
