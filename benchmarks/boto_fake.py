"""A real boto3 S3 client whose network is a sleep: a ``before-send`` hook answers every request after
``latency`` seconds, so everything boto3 does on our side (validation, serialisation, endpoint
rules, checksums, signing, parsing) runs and costs what it costs, and only the socket is left out."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse

from ddb_backup.aws import make_client


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


class SleepingNetwork:
    """Answers PutObject and DeleteObject as S3 would (a version id each) after ``latency`` seconds."""

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
        if request.method == "DELETE":
            return AWSResponse(request.url, 204, {**headers, "x-amz-delete-marker": "true"}, _EmptyBody())
        return AWSResponse(request.url, 200, headers, _EmptyBody())


def sleeping_s3_client(latency: float, **client_options: Any) -> Any:
    """An S3 client for us-east-1 whose requests never leave the process (see the module doc)."""
    client = make_client("s3", region="us-east-1", **client_options)
    client.meta.events.register("before-send.s3", SleepingNetwork(latency))
    return client
