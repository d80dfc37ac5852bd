"""The S3 backend of the object store."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ddb_backup.store.base import (
    NoSuchVersion,
    PreconditionFailed,
    PutResult,
    StoredObject,
    StoreError,
    VersionEntry,
)
from ddb_backup.store.pages import MAX_PAGE, PageSizes

_MISSING = {"NoSuchKey", "NoSuchVersion", "404", "405", "MethodNotAllowed", "InvalidArgument"}
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def _translate(err: ClientError | BotoCoreError, what: str) -> StoreError:
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            return NoSuchVersion(f"{what}: {code}")
        if code in _CONFLICT:
            return PreconditionFailed(f"{what}: {code}")
        return StoreError(f"{what}: {code or err}")
    return StoreError(f"{what}: {err}")


def expect_bucket_owner(client: Any, owner: str | None) -> Any:
    """Make every request of a boto3 S3 client that can carry ``ExpectedBucketOwner`` carry ``owner``
    (an account id), unless the call names one itself; S3 then answers 403 for a bucket another account
    owns (S3 user guide, "Verifying bucket ownership with bucket owner condition"). ``None``: no change.
    Returns the client."""
    if owner:

        def add_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
            if "ExpectedBucketOwner" in model.input_shape.members:
                params.setdefault("ExpectedBucketOwner", owner)

        client.meta.events.register("before-parameter-build.s3", add_owner)
    return client


class S3Store:
    """One bucket through a boto3 S3 client (retries are the client's: see ``ddb_backup.aws.clients``).

    ``expected_bucket_owner`` (an account id, when the owner is known) goes with every request as
    ``ExpectedBucketOwner``: a bucket of the same name in another account is refused, not written.
    Every backend takes the same argument (a native store too: the hook the function and the CLI use).
    """

    def __init__(self, client: Any, bucket: str, *, expected_bucket_owner: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.expected_bucket_owner = expected_bucket_owner
        # The arguments that name the bucket on every request.
        self._bucket: dict[str, str] = {"Bucket": bucket}
        if expected_bucket_owner:
            self._bucket["ExpectedBucketOwner"] = expected_bucket_owner

    def put(
        self,
        key: str,
        body: bytes,
        metadata: Mapping[str, str],
        *,
        content_type: str = "application/json",
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        args: dict[str, Any] = {
            **self._bucket,
            "Key": key,
            "Body": body,
            "Metadata": dict(metadata),
            "ContentType": content_type,
        }
        if if_match is not None:
            args["IfMatch"] = if_match
        if if_none_match:
            args["IfNoneMatch"] = "*"
        try:
            answer = self.client.put_object(**args)
        except (ClientError, BotoCoreError) as err:
            raise _translate(err, f"PutObject s3://{self.bucket}/{key}") from err
        return PutResult(answer.get("VersionId", "null"), answer.get("ETag"))

    def delete(self, key: str) -> str | None:
        try:
            answer = self.client.delete_object(**self._bucket, Key=key)
        except (ClientError, BotoCoreError) as err:
            raise _translate(err, f"DeleteObject s3://{self.bucket}/{key}") from err
        return answer.get("VersionId")

    def _read(self, operation: str, key: str, version_id: str | None) -> dict[str, Any]:
        args = {**self._bucket, "Key": key}
        if version_id is not None:
            args["VersionId"] = version_id
        try:
            answer: dict[str, Any] = getattr(self.client, operation)(**args)
        except (ClientError, BotoCoreError) as err:
            raise _translate(err, f"{operation} s3://{self.bucket}/{key}?versionId={version_id}") from err
        return answer

    def _stored(self, key: str, answer: Mapping[str, Any], body: bytes) -> StoredObject:
        return StoredObject(
            key=key,
            version_id=answer.get("VersionId", "null"),
            last_modified=answer["LastModified"],
            metadata={name.lower(): value for name, value in answer.get("Metadata", {}).items()},
            body=body,
            size=int(answer.get("ContentLength", len(body))),
            etag=answer.get("ETag"),
            content_type=answer.get("ContentType"),
        )

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        answer = self._read("get_object", key, version_id)
        try:
            body = answer["Body"].read()
        except (BotoCoreError, OSError) as err:
            raise StoreError(f"reading s3://{self.bucket}/{key}: {err}") from err
        return self._stored(key, answer, body)

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        return self._stored(key, self._read("head_object", key, version_id), b"")

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        return list_pages(self._page, self._bucket, prefix, key_marker, None)

    def list_versions_until(self, prefix: str, *, end: str, key_marker: str | None = None) -> Iterator[VersionEntry]:
        """``list_versions`` that ends after key ``end``: pages sized to end near it (``store.pages``)."""
        return list_pages(self._page, self._bucket, prefix, key_marker, PageSizes(end, key_marker))

    def _page(self, args: dict[str, Any]) -> Mapping[str, Any]:
        try:
            page: Mapping[str, Any] = self.client.list_object_versions(**args)
        except (ClientError, BotoCoreError) as err:
            raise _translate(err, f"ListObjectVersions s3://{self.bucket}/{args['Prefix']}") from err
        return page

    def versioning_enabled(self) -> bool:
        try:
            answer = self.client.get_bucket_versioning(**self._bucket)
        except (ClientError, BotoCoreError) as err:
            raise _translate(err, f"GetBucketVersioning s3://{self.bucket}") from err
        return bool(answer.get("Status") == "Enabled")


Page = Callable[[dict[str, Any]], Mapping[str, Any]]


def list_pages(
    page_of: Page, bucket: Mapping[str, str], prefix: str, key_marker: str | None, sizes: PageSizes | None
) -> Iterator[VersionEntry]:
    """A ListObjectVersions listing, page after page (``page_of(args)``: one page, in boto3's shape, for
    boto3's arguments), each page merged (``merge_page``); with ``sizes``, pages end near ``sizes.end``."""
    args: dict[str, Any] = {**bucket, "Prefix": prefix, "MaxKeys": MAX_PAGE if sizes is None else sizes.first()}
    if key_marker:
        args["KeyMarker"] = key_marker
    while True:
        page = page_of(args)
        entries = merge_page(page)
        yield from entries
        if not page.get("IsTruncated"):
            return
        args["KeyMarker"] = page["NextKeyMarker"]
        if page.get("NextVersionIdMarker"):
            args["VersionIdMarker"] = page["NextVersionIdMarker"]
        else:
            args.pop("VersionIdMarker", None)
        if sizes is not None and entries:
            if _past(entries[-1].key, sizes.end):
                return
            keys = len({entry.key for entry in entries})
            args["MaxKeys"] = sizes.next(len(entries), keys, entries[0].key, entries[-1].key)


def _past(key: str, end: str) -> bool:
    return key.encode("utf-8") > end.encode("utf-8")  # S3 orders keys by their UTF-8 bytes


def merge_page(page: Mapping[str, Any]) -> list[VersionEntry]:
    """One ListObjectVersions page as one sequence: keys ascending, each key's versions newest first.

    S3 answers versions and delete markers in two lists; we merge them by LastModified. S3 keeps
    LastModified to the second, so on a tie the latest entry comes first and otherwise a delete
    marker sorts as older than an object version (docs/format.md explains why that is safe).
    """
    entries = [
        VersionEntry(
            key=row["Key"],
            version_id=row.get("VersionId", "null"),
            last_modified=row["LastModified"],
            size=int(row.get("Size", 0)),
            is_latest=bool(row.get("IsLatest")),
            etag=row.get("ETag"),
        )
        for row in page.get("Versions", [])
    ]
    if not page.get("DeleteMarkers"):
        return entries  # one list, already in S3's order (which knows the order within a second too)
    entries += [
        VersionEntry(
            key=row["Key"],
            version_id=row.get("VersionId", "null"),
            last_modified=row["LastModified"],
            size=0,
            is_latest=bool(row.get("IsLatest")),
            is_delete_marker=True,
        )
        for row in page.get("DeleteMarkers", [])
    ]
    entries.sort(
        key=lambda e: (
            e.key.encode("utf-8"),
            not e.is_latest,
            -e.last_modified.timestamp(),
            e.is_delete_marker,
        )
    )
    return entries
