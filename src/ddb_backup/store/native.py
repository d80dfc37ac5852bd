"""The native S3 path: PutObject, DeleteObject, GetObject, HeadObject and ListObjectVersions through
awscrt's S3 client.

Why: through boto3 each of these requests costs about 2 ms of CPU on this machine (signing, urllib3,
hooks, parsing), which caps capture at ~300 records/s on one interpreter; awscrt (the AWS Common
Runtime, C) does the same request in ~0.2 ms and releases the interpreter lock while it waits.
Why awscrt rather than obstore (both measured, issue 16): obstore is as fast, but its delete returns no
version id (the delete marker's id is part of our store contract) and headers it cannot name itself
(``x-amz-expected-bucket-owner``) are added after signing, which S3 refuses for ``x-amz-*`` headers.
awscrt signs every header we send, answers every header S3 returns, and is AWS's own library.

ListObjectVersions is a signed GET of the bucket with the query botocore sends (``encoding-type=url``),
its XML read by ElementTree: botocore's parser and handlers cost ~86 us of CPU per listed version in a
restore (two XML parses per page, one to look for an error), most of a restore's listing. Everything
else (GetBucketVersioning, anything cold) stays on the boto3 client this store is made from; that
client also supplies the endpoint (``AWS_ENDPOINT_URL`` or
``--endpoint-url``), the region and the credentials (botocore's chain: env, profile, container or
instance role, Lambda's role), so both paths talk to the same place as the same principal.

Retries and timeouts match ``ddb_backup.aws.clients``: 8 attempts in all with exponential backoff, full
jitter and a 20 s cap (botocore's standard mode), a 5 s connect timeout, and a 30 s bound on one call
(botocore: 30 s per socket read), after which the request is cancelled and ``StoreError`` raised. The
backoff starts at 50 ms, botocore's scale for errors other than throttling (it uses 1 s for throttling;
awscrt has one scale for all): with 1 s, an endpoint that refused connections took 47 s to give up
against botocore's 4 s. A connection that cannot be made (refused, timed out, no such host) or that the
server closed without an answer is ``StoreUnreachable`` once awscrt's own retries are spent: the reader
does not retry it again, and the command says it cannot connect.

Chosen by ``DDB_BACKUP_S3_CLIENT``: ``auto`` (default: native when awscrt is installed, else boto3),
``native`` (an error if awscrt is missing) or ``boto3``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit
from xml.etree import ElementTree

from ddb_backup.aws.timestamps import parse_timestamp
from ddb_backup.store.base import (
    Fetched,
    NoSuchVersion,
    ObjectStore,
    PreconditionFailed,
    PutResult,
    StoredObject,
    StoreError,
    StoreUnreachable,
    VersionEntry,
)
from ddb_backup.store.pages import PageSizes
from ddb_backup.store.s3 import S3Store, list_pages

S3_CLIENT_ENV = "DDB_BACKUP_S3_CLIENT"
AUTO, NATIVE, BOTO3 = "auto", "native", "boto3"
MAX_RETRIES = 7  # 8 attempts in all, as ddb_backup.aws.clients.DEFAULT_MAX_ATTEMPTS
BACKOFF_SCALE_MS = 50  # botocore standard mode: random(0, 1) * 0.05 * 2 ** attempt seconds ...
MAX_BACKOFF_S = 20  # ... at most 20 s
CONNECT_TIMEOUT_MS = 5000
CALL_TIMEOUT_S = 30.0  # as the boto3 clients' read_timeout (ddb_backup.aws.clients): a stalled read costs alike
MAX_CONNECTIONS = 64
_META = "x-amz-meta-"
_MISSING_STATUS = {404, 405}  # 405: HEAD/GET of a delete marker's version id
_CONFLICT_STATUS = {409, 412}
_MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "InvalidArgument"}  # 400 InvalidArgument: a malformed version id
_UNREACHABLE_ERRORS = {  # awscrt's names of a connection not made, or closed by the server without an answer
    "AWS_IO_SOCKET_CONNECTION_REFUSED",
    "AWS_IO_SOCKET_TIMEOUT",
    "AWS_IO_SOCKET_NO_ROUTE_TO_HOST",
    "AWS_IO_SOCKET_NETWORK_DOWN",
    "AWS_IO_SOCKET_CLOSED",
    "AWS_IO_DNS_INVALID_NAME",
    "AWS_IO_DNS_QUERY_FAILED",
    "AWS_IO_DNS_NO_ADDRESS_FOR_HOST",
    "AWS_ERROR_HTTP_CONNECTION_CLOSED",
    "AWS_ERROR_HTTP_SERVER_CLOSED",
}


class BackendMissing(ValueError):
    """The native client was asked for by name and is not installed."""


def native_available() -> bool:
    try:
        import awscrt.s3  # noqa: F401
    except ImportError:
        return False
    return True


def chosen_backend(env: Mapping[str, str] | None = None) -> str:
    """``native`` or ``boto3``, from ``DDB_BACKUP_S3_CLIENT`` (see the module doc)."""
    value = (os.environ if env is None else env).get(S3_CLIENT_ENV, AUTO).strip().lower() or AUTO
    if value not in (AUTO, NATIVE, BOTO3):
        raise BackendMissing(f"{S3_CLIENT_ENV}={value!r} is not a backend: use auto, native or boto3")
    if value == AUTO:
        return NATIVE if native_available() else BOTO3
    if value == NATIVE and not native_available():
        raise BackendMissing(
            f"{S3_CLIENT_ENV}=native but awscrt is not installed: install it (it is in the Lambda zip) "
            f"or set {S3_CLIENT_ENV}=boto3"
        )
    return value


def open_s3_store(
    client: Any, bucket: str, *, backend: str | None = None, expected_bucket_owner: str | None = None
) -> ObjectStore:
    """The bucket through the backend chosen by ``backend`` or ``DDB_BACKUP_S3_CLIENT``."""
    env = {S3_CLIENT_ENV: backend} if backend else None
    if chosen_backend(env) == NATIVE:
        return NativeS3Store(client, bucket, expected_bucket_owner=expected_bucket_owner)
    return _boto3_store(client, bucket, expected_bucket_owner)


def _boto3_store(client: Any, bucket: str, expected_bucket_owner: str | None) -> S3Store:
    return S3Store(client, bucket, expected_bucket_owner=expected_bucket_owner)


class _Crt:
    """One awscrt S3 client for an endpoint, region and credentials (made from a boto3 client)."""

    def __init__(self, boto_client: Any) -> None:
        from awscrt import auth, s3
        from awscrt import io as crt_io

        self.s3 = s3
        endpoint = urlsplit(boto_client.meta.endpoint_url)
        self.secure = endpoint.scheme != "http"
        self.host = endpoint.netloc
        self.region = boto_client.meta.region_name or "us-east-1"
        loops = crt_io.EventLoopGroup(2)
        bootstrap = crt_io.ClientBootstrap(loops, crt_io.DefaultHostResolver(loops))
        signing = auth.AwsSigningConfig(
            algorithm=auth.AwsSigningAlgorithm.V4,
            signature_type=auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
            credentials_provider=auth.AwsCredentialsProvider.new_delegate(_credentials_of(boto_client)),
            region=self.region,
            service="s3",
            use_double_uri_encode=False,  # S3 signs the path as sent
            should_normalize_uri_path=False,  # a key may hold "//" or "/../"
            signed_body_header_type=auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256,
        )
        self.client = s3.S3Client(
            bootstrap=bootstrap,
            region=self.region,
            signing_config=signing,
            tls_mode=s3.S3RequestTlsMode.ENABLED if self.secure else s3.S3RequestTlsMode.DISABLED,
            retry_config=s3.S3RetryConfig(
                max_retries=MAX_RETRIES, backoff_scale_factor_ms=BACKOFF_SCALE_MS, max_backoff_secs=MAX_BACKOFF_S
            ),
            connect_timeout_ms=CONNECT_TIMEOUT_MS,
            # awscrt sizes its pool for big transfers (25 connections were seen at most); our requests
            # are small and many: as many connections as boto3's pool (ddb_backup.aws.clients.DEFAULT_POOL)
            max_active_connections_override=MAX_CONNECTIONS,
            throughput_target_gbps=100.0,
        )


def _credentials_of(boto_client: Any) -> Any:
    """A callable giving awscrt the boto3 client's current credentials (refreshed by botocore)."""
    from awscrt.auth import AwsCredentials

    def current() -> Any:
        credentials = boto_client._request_signer._credentials  # botocore's chain, as the client uses it
        if credentials is None:
            raise StoreError("no AWS credentials found (env, profile, or role): the native S3 client cannot sign")
        frozen = credentials.get_frozen_credentials()
        return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token)

    return current


class _Answer:
    """What one request got back: status, headers (lower-case names) and body."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []

    def on_headers(self, status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
        self.status = status_code
        self.headers = {name.lower(): value for name, value in headers}

    def on_body(self, chunk: bytes, **_: Any) -> None:
        self.chunks.append(bytes(chunk))

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class Pending:
    """A GET started by ``NativeS3Store.get_soon``: when it started (``time.monotonic``), and its cancel."""

    __slots__ = ("_sent", "started")

    def __init__(self, sent: Any) -> None:
        self.started = time.monotonic()
        self._sent = sent

    def cancel(self) -> None:
        """End it now: its ``then`` gets an error (a StoreError from ``fetched()``)."""
        self._sent.cancel()


class NativeS3Store:
    """One bucket: hot object requests through awscrt, listings and cold calls through ``client`` (boto3)."""

    def __init__(self, client: Any, bucket: str, *, expected_bucket_owner: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.expected_bucket_owner = expected_bucket_owner
        self.cold = _boto3_store(client, bucket, expected_bucket_owner)
        self._crt: _Crt | None = None
        self._lock = threading.Lock()

    @property
    def crt(self) -> _Crt:
        with self._lock:
            if self._crt is None:
                self._crt = _Crt(self.client)
            return self._crt

    def _target(self, key: str, version_id: str | None) -> tuple[str, str]:
        """(Host header, path and query) for ``key``: virtual-hosted on AWS, path-style elsewhere."""
        crt = self.crt
        quoted = quote(key, safe="/~")
        query = f"?versionId={quote(version_id, safe='')}" if version_id is not None else ""
        if crt.host.endswith("amazonaws.com") and "." not in self.bucket:
            return f"{self.bucket}.{crt.host}", f"/{quoted}{query}"
        return crt.host, f"/{self.bucket}/{quoted}{query}"

    def _send(
        self, method: str, key: str, version_id: str | None = None, body: bytes = b"", headers: Mapping[str, str] = {}
    ) -> _Answer:

        host, path = self._target(key, version_id)
        what = f"{method} s3://{self.bucket}/{key}" + (f"?versionId={version_id}" if version_id else "")
        return self._request(method, host, path, what, body, headers, _OPERATIONS[method])

    def _request(
        self, method: str, host: str, path: str, what: str, body: bytes, headers: Mapping[str, str], operation: str
    ) -> _Answer:
        answer = _Answer()
        sent = self._start(method, host, path, what, body, headers, operation, answer)
        try:
            sent.finished_future.result(timeout=CALL_TIMEOUT_S)
        except FutureTimeout as err:
            sent.cancel()
            raise StoreError(f"{what}: no answer within {CALL_TIMEOUT_S:.0f} s") from err
        except Exception as err:  # an error answer, or a connection failure after the client's own retries
            raise self._failure(what, err) from err
        return answer

    def _failure(self, what: str, err: BaseException) -> StoreError:
        """A request that ended in ``err``: S3's error answer translated (``NoSuchVersion``,
        ``PreconditionFailed``); ``StoreUnreachable`` when no connection could be made (or the server
        closed it), worded as botocore words it; else ``StoreError``."""
        if isinstance(err, self.crt.s3.S3ResponseError):
            return _translate(err.status_code, err.body or b"", what)
        name = getattr(err, "name", "")
        if name in _UNREACHABLE_ERRORS:
            scheme = "https" if self.crt.secure else "http"
            return StoreUnreachable(
                f"{what}: Could not connect to the endpoint URL: {scheme}://{self.crt.host} ({name})"
            )
        return StoreError(f"{what}: {err}")

    def _start(
        self,
        method: str,
        host: str,
        path: str,
        what: str,
        body: bytes,
        headers: Mapping[str, str],
        operation: str,
        answer: _Answer,
        on_done: Callable[..., None] | None = None,
    ) -> Any:
        """The request sent (awscrt's ``S3Request``): ``answer`` fills as it comes, ``on_done`` (on the
        client's event-loop thread) once it ended."""
        from awscrt.http import HttpHeaders, HttpRequest

        fields = [("Host", host), *headers.items()]
        if method == "PUT":
            fields.append(("Content-Length", str(len(body))))
        if self.expected_bucket_owner:
            fields.append(("x-amz-expected-bucket-owner", self.expected_bucket_owner))
        request = HttpRequest(method, path, HttpHeaders(fields), io.BytesIO(body) if method == "PUT" else None)
        crt = self.crt
        try:
            return crt.client.make_request(
                type=crt.s3.S3RequestType.DEFAULT,
                request=request,
                operation_name=operation,
                on_headers=answer.on_headers,
                on_body=answer.on_body,
                on_done=on_done,
            )
        except Exception as err:  # awscrt raises its own error types for a request it cannot start
            raise StoreError(f"{what}: {err}") from err

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
        headers = {"Content-Type": content_type, **{_META + name.lower(): value for name, value in metadata.items()}}
        # S3 refuses an upload to a bucket with Object Lock default retention without an integrity
        # checksum (S3 user guide, "Using S3 Object Lock"); boto3 sends one by default, so do we.
        headers["Content-MD5"] = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode("ascii")
        if if_match is not None:
            headers["If-Match"] = if_match
        if if_none_match:
            headers["If-None-Match"] = "*"
        answer = self._send("PUT", key, body=body, headers=headers)
        return PutResult(answer.headers.get("x-amz-version-id", "null"), answer.headers.get("etag"))

    def delete(self, key: str) -> str | None:
        """A delete marker; its version id comes back in ``x-amz-version-id`` (None if unversioned)."""
        return self._send("DELETE", key).headers.get("x-amz-version-id")

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        answer = self._send("GET", key, version_id)
        return _stored(key, answer.headers, answer.body)

    def get_soon(self, key: str, version_id: str | None, then: Callable[[Fetched], None]) -> Pending:
        """Start a GET without a thread waiting for it: ``then(fetched)`` is called once, on the native
        client's event-loop thread, when it ends; ``fetched()`` gives the ``StoredObject`` or raises as
        ``get`` raises. ``then`` must hand the work on (a queue), not do it: that thread serves the
        client's other requests. The returned ``Pending`` cancels a GET that takes too long (``get``'s
        ``CALL_TIMEOUT_S``: the caller watches, no timer runs here).

        Why (issue 16): a thread blocked on each GET cost restore ~0.1 ms of CPU per item in hand-offs
        (0.43 ms per GET through 64 waiting threads, 0.33 ms started this way, measured on 20,000 GETs)."""
        host, path = self._target(key, version_id)
        what = f"GET s3://{self.bucket}/{key}" + (f"?versionId={version_id}" if version_id else "")
        answer = _Answer()

        def fetched(error: BaseException | None) -> Fetched:
            def result() -> StoredObject:
                if error is not None:
                    raise self._failure(what, error) from error
                return _stored(key, answer.headers, answer.body)

            return result

        def on_done(error: BaseException | None = None, **_: Any) -> None:
            then(fetched(error))

        return Pending(self._start("GET", host, path, what, b"", {}, "GetObject", answer, on_done))

    def head(self, key: str, version_id: str | None = None) -> StoredObject:
        return _stored(key, self._send("HEAD", key, version_id).headers, b"")

    def list_versions(self, prefix: str, *, key_marker: str | None = None) -> Iterator[VersionEntry]:
        return list_pages(self._page, {"Bucket": self.bucket}, prefix, key_marker, None)

    def list_versions_until(self, prefix: str, *, end: str, key_marker: str | None = None) -> Iterator[VersionEntry]:
        return list_pages(self._page, {"Bucket": self.bucket}, prefix, key_marker, PageSizes(end, key_marker))

    def _page(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """One ListObjectVersions page (boto3's arguments and answer shape), asked for as botocore asks:
        ``encoding-type=url``, so any key survives the XML (S3 API reference, ListObjectVersions)."""
        query = {"versions": "", "encoding-type": "url", "prefix": args["Prefix"], "max-keys": str(args["MaxKeys"])}
        if args.get("KeyMarker"):
            query["key-marker"] = args["KeyMarker"]
        if args.get("VersionIdMarker"):
            query["version-id-marker"] = args["VersionIdMarker"]
        text = "&".join(f"{name}={quote(value, safe='-_.~')}" for name, value in sorted(query.items()))
        host = self.crt.host
        if host.endswith("amazonaws.com") and "." not in self.bucket:
            host, path = f"{self.bucket}.{host}", f"/?{text}"
        else:
            path = f"/{self.bucket}?{text}"
        what = f"ListObjectVersions s3://{self.bucket}/{args['Prefix']}"
        answer = self._request("GET", host, path, what, b"", {}, "ListObjectVersions")
        try:
            return parse_listing(answer.body)
        except (ElementTree.ParseError, KeyError, ValueError) as err:
            raise StoreError(f"{what}: unreadable answer: {err}") from err

    def versioning_enabled(self) -> bool:
        return self.cold.versioning_enabled()


_OPERATIONS = {"PUT": "PutObject", "DELETE": "DeleteObject", "GET": "GetObject", "HEAD": "HeadObject"}


def _translate(status: int | None, body: bytes, what: str) -> StoreError:
    code = _error_code(body) or str(status)
    if status in _MISSING_STATUS or code in _MISSING_CODES:
        return NoSuchVersion(f"{what}: {code}")
    if status in _CONFLICT_STATUS:
        return PreconditionFailed(f"{what}: {code}")
    return StoreError(f"{what}: {code}")


def _error_code(body: bytes) -> str:
    start = body.find(b"<Code>")
    end = body.find(b"</Code>", start)
    return body[start + 6 : end].decode("utf-8", "replace") if start >= 0 and end > start else ""


def _stored(key: str, headers: Mapping[str, str], body: bytes) -> StoredObject:
    return StoredObject(
        key=key,
        version_id=headers.get("x-amz-version-id", "null"),
        last_modified=_http_date(headers.get("last-modified", "")),
        metadata={name[len(_META) :]: value for name, value in headers.items() if name.startswith(_META)},
        body=body,
        size=int(headers.get("content-length", len(body))),
        etag=headers.get("etag"),
        content_type=headers.get("content-type"),
    )


def _http_date(text: str) -> datetime:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError) as err:
        raise StoreError(f"S3 answered an unreadable Last-Modified {text!r}") from err


def parse_listing(body: bytes) -> dict[str, Any]:
    """A ListObjectVersions answer (XML) as boto3 answers it: ``Versions`` and ``DeleteMarkers`` rows with
    ``LastModified`` as aware datetimes, keys URL-decoded when S3 says ``EncodingType`` url."""
    root = ElementTree.fromstring(body)
    page: dict[str, Any] = {"Versions": [], "DeleteMarkers": []}
    for node in root:
        tag = node.tag.rpartition("}")[2]
        if tag in ("Version", "DeleteMarker"):
            page["Versions" if tag == "Version" else "DeleteMarkers"].append(_row(node))
        elif tag in ("IsTruncated", "NextKeyMarker", "NextVersionIdMarker", "EncodingType"):
            page[tag] = node.text or ""
    page["IsTruncated"] = page.get("IsTruncated") == "true"
    if page.get("EncodingType") == "url":
        for row in page["Versions"] + page["DeleteMarkers"]:
            row["Key"] = unquote_plus(row["Key"])
        if "NextKeyMarker" in page:
            page["NextKeyMarker"] = unquote_plus(page["NextKeyMarker"])
    return page


def _row(node: ElementTree.Element) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for child in node:
        tag = child.tag.rpartition("}")[2]
        text = child.text or ""
        if tag == "LastModified":
            row[tag] = parse_timestamp(text)
        elif tag == "IsLatest":
            row[tag] = text == "true"
        elif tag == "Size":
            row[tag] = int(text)
        elif tag in ("Key", "VersionId", "ETag"):
            row[tag] = text
    return row
