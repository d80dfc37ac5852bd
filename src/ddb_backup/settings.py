"""The function's settings: Lambda environment variables with the original tool's names.

Read and checked once, at cold start; an explicit argument beats the environment.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from ddb_backup.format.keys import MAX_PREFIX_BYTES

BACKUP_BUCKET = "BackupBucket"
BACKUP_PREFIX = "BackupPrefix"
PLAIN_TEXT_KEY_AS_FILENAME = "PlainTextKeyAsFilename"
MULTI_TENANCY_COLUMN = "MultiTenancyColumn"
EXPECTED_BUCKET_OWNER = "ExpectedBucketOwner"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names it and the fix."""


def parse_bool(name: str, value: str | None) -> bool:
    """``true/false/1/0/yes/no`` (any case); unset or empty is false; anything else is an error."""
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{name}={value!r} is not a boolean: use true or false (also 1/0, yes/no)")


def clean_prefix(prefix: str) -> str:
    """The BackupPrefix without surrounding spaces and slashes; ``.`` and ``..`` folders are refused,
    so is a control character (S3's XML listings cannot carry it, so no reader could list the folder),
    and so is a prefix past ``MAX_PREFIX_BYTES`` of UTF-8, which with a 255-character table name, the
    longest tenant segment and a hashed name would pass S3's 1,024-byte keys (docs/format.md)."""
    if any(unicodedata.category(char) == "Cc" for char in prefix):
        raise SettingsError(
            f"{BACKUP_PREFIX}={prefix!r} holds a control character, which S3 listings cannot carry: "
            "use printable characters"
        )
    cleaned = prefix.strip().strip("/")
    if any(part in (".", "..") for part in cleaned.split("/")):
        raise SettingsError(
            f"{BACKUP_PREFIX}={prefix!r} must not contain '.' or '..' path segments: use the function's BackupPrefix"
        )
    size = len(cleaned.encode("utf-8"))
    if size > MAX_PREFIX_BYTES:
        raise SettingsError(
            f"{BACKUP_PREFIX} is {size} bytes of UTF-8; it may be at most {MAX_PREFIX_BYTES} bytes so that every "
            "object key stays within S3's 1,024 bytes: choose a shorter BackupPrefix"
        )
    return cleaned


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str = ""
    plain_text: bool = False
    tenant_column: str | None = None
    expected_bucket_owner: str | None = None  # account id; every S3 request carries it

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        bucket = env.get(BACKUP_BUCKET, "").strip()
        if not bucket:
            raise SettingsError(
                f"{BACKUP_BUCKET} is not set: set the function's environment variable {BACKUP_BUCKET} "
                "to the name of a versioned S3 bucket"
            )
        prefix = clean_prefix(env.get(BACKUP_PREFIX, ""))
        return cls(
            bucket=bucket,
            prefix=prefix,
            plain_text=parse_bool(PLAIN_TEXT_KEY_AS_FILENAME, env.get(PLAIN_TEXT_KEY_AS_FILENAME)),
            tenant_column=env.get(MULTI_TENANCY_COLUMN, "").strip() or None,
            expected_bucket_owner=account_id(EXPECTED_BUCKET_OWNER, env.get(EXPECTED_BUCKET_OWNER)),
        )


def account_id(name: str, value: str | None) -> str | None:
    """An AWS account id (12 digits), or None when unset or empty."""
    text = (value or "").strip()
    if text and not (len(text) == 12 and text.isdigit()):
        raise SettingsError(
            f"{name}={value!r} is not an AWS account id: use the bucket owner's 12 digits, or leave it empty"
        )
    return text or None


def require_versioning(bucket: str, enabled: bool) -> None:
    """Refuse a bucket without versioning: every change must stay a version of its own."""
    if not enabled:
        raise SettingsError(
            f"bucket {bucket!r} does not have versioning enabled, so backups would overwrite each other: "
            f"run 'aws s3api put-bucket-versioning --bucket {bucket} "
            "--versioning-configuration Status=Enabled'"
        )
