"""A fake S3 + DynamoDB HTTP endpoint on 127.0.0.1 that answers every request after a set latency.

It runs in a process of its own (``FakeEndpoint``), on asyncio with a hand-written HTTP/1.1 reader
(keep-alive, no framework), so real clients (boto3, awscrt) talk to it over real sockets while it
costs little CPU per request; its own CPU is reported beside every figure (``stats()['cpu_s']``), so
a reader can see it is not the limit.

S3 (path-style, ``/bucket/key``): PutObject and DeleteObject answer a new version id (nothing is
kept: capture only writes); GetObject, HeadObject and ListObjectVersions answer a synthetic table's
history (``benchmarks.synthetic.History``: every version computed from the item number, never held),
with the metadata capture would have written; GetBucketVersioning answers Enabled.
DynamoDB (``X-Amz-Target``): DescribeTable, CreateTable, a Scan that counts, and BatchWriteItem
(at most 25 requests, items kept by key so the restored table can be checked).
``GET /__stats`` answers requests by kind, the most in flight at once, and the process's CPU seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import os
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from benchmarks.synthetic import History, SyntheticStore

Answer = tuple[int, dict[str, str], bytes]
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


class Fake:
    """The endpoint's state and answers (no I/O here)."""

    def __init__(self, history: History | None, tables: dict[str, dict[str, Any]], extra: dict[str, bytes]) -> None:
        self.synthetic = SyntheticStore(history, extra=extra) if history else None
        self.descriptions = tables
        self.rows: dict[str, dict[str, Any]] = {name: {} for name in tables}
        self.versions = itertools.count(1)
        self.counts: Counter[str] = Counter()
        self.flight = 0
        self.most = 0

    def stats(self) -> dict[str, Any]:
        times = os.times()
        rows = {name: len(rows) for name, rows in self.rows.items()}
        return {
            "counts": dict(self.counts),
            "most_in_flight": self.most,
            "cpu_s": times.user + times.system,
            "rows": rows,
        }

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        if "x-amz-target" in headers:
            return self.dynamodb(headers["x-amz-target"].split(".")[-1], json.loads(body or b"{}"))
        parts = urlsplit(target)
        if parts.path == "/__stats":
            answer = json.dumps(self.stats()).encode()
            if "reset" in parts.query:
                self.most = self.flight
            return 200, {"Content-Type": "application/json"}, answer
        if parts.path == "/__check":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.check(parts.query)).encode()
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        _, _, key = unquote(parts.path).lstrip("/").partition("/")
        if not key:
            return self.bucket_call(method, query)
        return self.object_call(method, key, query.get("versionId"))

    def check(self, table: str) -> dict[str, int]:
        """The restored ``table`` against the synthetic history: each item's image must be its last
        version with an event at or before the history's TIME."""
        assert self.synthetic is not None
        history = self.synthetic.history
        wrong = 0
        for item in self.rows.get(table, {}).values():
            number = history.item_of(history.prefix + item["pk"]["S"])
            times = history.event_times(number)
            expected = max(version for version in range(history.versions) if times[version] <= history.at)
            wrong += item.get("v") != {"N": str(expected)}
        return {"items": len(self.rows.get(table, {})), "wrong": wrong}

    # S3 ------------------------------------------------------------------------------------------
    def bucket_call(self, method: str, query: dict[str, str]) -> Answer:
        if method == "HEAD":  # HeadBucket: the CLI's look that the bucket exists
            self.counts["HeadBucket"] += 1
            return 200, {"x-amz-bucket-region": "us-east-1"}, b""
        if "versioning" in query:
            self.counts["GetBucketVersioning"] += 1
            xml = f'<VersioningConfiguration xmlns="{S3_NS}"><Status>Enabled</Status></VersioningConfiguration>'
            return 200, {"Content-Type": "application/xml"}, xml.encode()
        if "versions" in query:
            self.counts["ListObjectVersions"] += 1
            return 200, {"Content-Type": "application/xml"}, self.list_page(query)
        return _error(400, "NotImplemented")

    def object_call(self, method: str, key: str, version_id: str | None) -> Answer:
        if method == "PUT":
            self.counts["PutObject"] += 1
            version = f"v{next(self.versions):012d}"
            return 200, {"x-amz-version-id": version, "ETag": '"0123456789abcdef0123456789abcdef"'}, b""
        if method == "DELETE":
            self.counts["DeleteObject"] += 1
            return 204, {"x-amz-version-id": f"v{next(self.versions):012d}", "x-amz-delete-marker": "true"}, b""
        self.counts["HeadObject" if method == "HEAD" else "GetObject"] += 1
        if self.synthetic is None:
            return _error(404, "NoSuchKey")
        try:
            found = (self.synthetic.head if method == "HEAD" else self.synthetic.get)(key, version_id)
        except Exception:
            return _error(404, "NoSuchKey")
        headers = {
            "x-amz-version-id": found.version_id,
            "Last-Modified": formatdate(found.last_modified.timestamp(), usegmt=True),
            "ETag": found.etag or '"0"',
            "Content-Type": "application/json",
            **{f"x-amz-meta-{name}": value for name, value in found.metadata.items()},
        }
        if method == "HEAD":
            headers["Content-Length"] = str(found.size)
            return 200, headers, b""
        return 200, headers, found.body

    def list_page(self, query: dict[str, str]) -> bytes:
        """One ListObjectVersions page from the synthetic history: key-marker and version-id-marker honoured.
        Without one, an empty bucket (capture lists an item's versions before its first write)."""
        prefix, limit = query.get("prefix", ""), int(query.get("max-keys") or 1000)
        marker, version_marker = query.get("key-marker") or None, query.get("version-id-marker") or None
        rows: list[str] = []
        last: tuple[str, str] | None = None
        truncated = False
        for entry in self._versions_from(prefix, marker, version_marker) if self.synthetic is not None else ():
            if len(rows) == limit:
                truncated = True
                break
            rows.append(
                f"<Version><Key>{escape(entry.key)}</Key><VersionId>{entry.version_id}</VersionId>"
                f"<IsLatest>{'true' if entry.is_latest else 'false'}</IsLatest>"
                f"<LastModified>{entry.last_modified.strftime('%Y-%m-%dT%H:%M:%S.000Z')}</LastModified>"
                f"<ETag>{escape(entry.etag or '')}</ETag><Size>{entry.size}</Size>"
                "<StorageClass>STANDARD</StorageClass></Version>"
            )
            last = (entry.key, entry.version_id)
        self.counts["ListObjectVersions rows"] += len(rows)
        markers = ""
        if truncated and last:
            markers = (
                f"<NextKeyMarker>{escape(last[0])}</NextKeyMarker><NextVersionIdMarker>{last[1]}</NextVersionIdMarker>"
            )
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="{S3_NS}"><Name>bench</Name>'
            f"<Prefix>{escape(prefix)}</Prefix><MaxKeys>{limit}</MaxKeys>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{markers}"
            f"{''.join(rows)}</ListVersionsResult>"
        )
        return xml.encode()

    def _versions_from(self, prefix: str, marker: str | None, version_marker: str | None) -> Iterator[Any]:
        """Versions after (key-marker, version-id-marker), as S3 lists them, found by binary search
        (none without a history: capture's writes are not kept)."""
        synthetic = self.synthetic
        if synthetic is None:
            return
        history = synthetic.history
        start = synthetic._first_after(prefix, inclusive=True)
        if marker:
            start = max(start, synthetic._first_after(marker, inclusive=version_marker is not None))
        for item in range(start, history.items):
            key = history.name(item)
            if not key.startswith(prefix):
                return
            entries = synthetic._entries(key, item)
            if version_marker is not None and key == marker:
                ids = [entry.version_id for entry in entries]
                entries = entries[ids.index(version_marker) + 1 :] if version_marker in ids else entries
            yield from entries

    # DynamoDB ------------------------------------------------------------------------------------
    def dynamodb(self, operation: str, args: dict[str, Any]) -> Answer:
        self.counts[operation] += 1
        table = args.get("TableName", "")
        if operation == "DescribeTable":
            if table not in self.descriptions:
                return _ddb_error("ResourceNotFoundException", f"table {table} not found")
            return _json({"Table": {**self.descriptions[table], "ItemCount": len(self.rows[table])}})
        if operation == "CreateTable":
            self.descriptions[table] = {**args, "TableStatus": "ACTIVE", "ItemCount": 0}
            self.rows[table] = {}
            return _json({"TableDescription": self.descriptions[table]})
        if operation == "Scan":
            return _json({"Count": len(self.rows.get(table, {})), "ScannedCount": 0, "Items": []})
        if operation == "BatchWriteItem":
            return self.batch_write(args["RequestItems"])
        return _ddb_error("UnknownOperationException", operation)

    def batch_write(self, request_items: dict[str, list[dict[str, Any]]]) -> Answer:
        if sum(len(requests) for requests in request_items.values()) > 25:
            return _ddb_error("ValidationException", "too many items in BatchWriteItem")
        for table, requests in request_items.items():
            names = [row["AttributeName"] for row in self.descriptions[table]["KeySchema"]]
            rows = self.rows[table]
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"]["Item"]
                    rows[json.dumps([item[name] for name in names])] = item
                else:
                    rows.pop(json.dumps([request["DeleteRequest"]["Key"][name] for name in names]), None)
        return _json({"UnprocessedItems": {}})


def _error(status: int, code: str) -> Answer:
    return status, {"Content-Type": "application/xml"}, f"<Error><Code>{code}</Code></Error>".encode()


def _json(value: Any) -> Answer:
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(value).encode()


def _ddb_error(code: str, message: str) -> Answer:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    return 400, {"Content-Type": "application/x-amz-json-1.0"}, body


async def _serve_connection(fake: Fake, latency: float, reader: asyncio.StreamReader, writer: Any) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if headers.get("expect", "").lower() == "100-continue":  # as S3 does: botocore waits for it
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
            fake.flight += 1
            fake.most = max(fake.most, fake.flight)
            try:
                if latency and not target.startswith("/__stats"):
                    await asyncio.sleep(latency)
                status, answer_headers, answer = fake.answer(method, target, headers, body)
            finally:
                fake.flight -= 1
            lines_out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(answer)}"]
            lines_out += [f"{name}: {value}" for name, value in answer_headers.items() if name != "Content-Length"]
            if method == "HEAD":
                lines_out[1] = f"Content-Length: {answer_headers.get('Content-Length', '0')}"
                answer = b""
            writer.write(("\r\n".join(lines_out) + "\r\n\r\n").encode("latin-1") + answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _run(
    port_out: Any, latency: float, history: History | None, tables: dict[str, Any], extra: dict[str, bytes]
) -> None:
    fake = Fake(history, tables, extra)

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _serve_connection(fake, latency, r, w), "127.0.0.1", 0, backlog=1024
        )
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextmanager
def fake_endpoint(
    latency: float = 0.02,
    history: History | None = None,
    tables: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Iterator[str]:
    """The endpoint's URL while the fake runs in a process of its own."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_run, args=(send, latency, history, tables or {}, extra or {}), daemon=True)
    process.start()
    try:
        if not receive.poll(30):
            raise RuntimeError("the fake endpoint did not start")
        yield f"http://127.0.0.1:{receive.recv()}"
    finally:
        process.terminate()
        process.join(5)


def stats(url: str, *, reset_most: bool = False) -> dict[str, Any]:
    """Requests by kind, the most in flight (since the last reset), and the fake's CPU seconds so far."""
    with urllib.request.urlopen(f"{url}/__stats{'?reset' if reset_most else ''}", timeout=10) as answer:
        result: dict[str, Any] = json.loads(answer.read())
    return result


def check(url: str, table: str) -> dict[str, int]:
    """How many items ``table`` holds, and how many differ from the history at its TIME."""
    with urllib.request.urlopen(f"{url}/__check?{table}", timeout=600) as answer:
        result: dict[str, int] = json.loads(answer.read())
    return result


def wait_until_up(url: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            stats(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
