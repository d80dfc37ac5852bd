"""A real boto3 S3 client whose network is a sleep: a ``before-send`` hook answers every request after
``latency`` seconds, so everything boto3 does on our side (validation, serialisation, endpoint
rules, checksums, signing, parsing) runs and costs what it costs, and only the socket is left out."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from ddb_backup.aws.clients import client_config


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


class _Body:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.content


# A fresh bucket: a HEAD finds nothing, a version listing is empty (capture looks before its first write).
_EMPTY_LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>'
)


class SleepingNetwork:
    """Answers PutObject and DeleteObject as S3 would (a version id each) after ``latency`` seconds, and
    HeadObject and ListObjectVersions as an empty bucket does."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            version = f"v{next(self._ids):012d}"
        headers = {"x-amz-version-id": version, "ETag": '"0123456789abcdef0123456789abcdef"'}
        if request.method == "HEAD":
            return AWSResponse(request.url, 404, {}, _EmptyBody())
        if request.method == "GET":
            return AWSResponse(request.url, 200, {}, _Body(_EMPTY_LISTING))
        if request.method == "DELETE":
            return AWSResponse(request.url, 204, {**headers, "x-amz-delete-marker": "true"}, _EmptyBody())
        return AWSResponse(request.url, 200, headers, _EmptyBody())


# Client settings that cut boto3's CPU per request (measured by the benchmarks; not the project's defaults):
# no local parameter validation, and no CRC32 checksum (nor aws-chunked body) unless an operation needs one.
LEAN = Config(
    parameter_validation=False,
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)


def sleeping_s3_client(latency: float, *, lean: bool = False) -> Any:
    """An S3 client for us-east-1 whose requests never leave the process (see the module doc)."""
    config = client_config().merge(LEAN) if lean else client_config()
    client = boto3.session.Session().client("s3", region_name="us-east-1", config=config)
    client.meta.events.register("before-send.s3", SleepingNetwork(latency))
    return client
