"""``ExpectedBucketOwner`` on every S3 request to a bucket whose owner is known (issue 15.5).

moto does not check the owner, so these tests watch the wire: every S3 request the process sends is
recorded with its ``x-amz-expected-bucket-owner`` header, through boto3 (botocore's ``Endpoint``) and
through the native store (awscrt's ``HttpRequest``).
S3's rule (user guide, "Verifying bucket ownership with bucket owner condition"): a request whose
expected owner is not the bucket's owner is refused with 403, so a look-alike bucket is never written.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.endpoint import Endpoint
from click.testing import CliRunner
from moto import mock_aws

from builders import event, put, remove
from ddb_backup import handler as h
from ddb_backup.aws.clients import make_client
from ddb_backup.cli import cli
from ddb_backup.lab.demo import create_bucket, create_table
from ddb_backup.settings import Settings, SettingsError
from ddb_backup.store.native import open_s3_store
from ddb_backup.store.s3 import S3Store

OWNER = "123456789012"  # moto's account
HEADER = "x-amz-expected-bucket-owner"


@pytest.fixture
def s3_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """(operation, expected-owner header) of every S3 request sent from now on, by any client."""
    sent: list[tuple[str, str | None]] = []
    original = Endpoint.make_request

    def recording(self: Endpoint, operation_model: Any, request_dict: dict[str, Any]) -> Any:
        if operation_model.service_model.service_name == "s3":
            headers = {name.lower(): value for name, value in request_dict["headers"].items()}
            sent.append((operation_model.name, headers.get(HEADER)))
        return original(self, operation_model, request_dict)

    monkeypatch.setattr(Endpoint, "make_request", recording)
    try:
        from awscrt import http, s3  # noqa: F401  (s3 first: it binds HttpRequest for its isinstance checks)
    except ImportError:  # no native store in this environment
        return sent

    class RecordingRequest(http.HttpRequest):  # type: ignore[misc]
        """Records the native store's requests (botocore signs through awscrt too: not those)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if sys._getframe(1).f_globals.get("__name__") == "ddb_backup.store.native":
                name = "native LIST" if "versions=" in self.path.partition("?")[2] else f"native {self.method}"
                sent.append((name, self.headers.get(HEADER)))

    monkeypatch.setattr(http, "HttpRequest", RecordingRequest)
    return sent


@pytest.fixture
def bucket() -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="owned")
        s3.put_bucket_versioning(Bucket="owned", VersioningConfiguration={"Status": "Enabled"})
        yield s3


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["boto3", "native"])
def test_both_store_backends_name_the_owner_on_every_request(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, s3_requests: list[tuple[str, str | None]], backend: str
) -> None:
    # GIVEN a bucket on moto's server and the store chosen like the function and the CLI choose it
    pytest.importorskip("awscrt")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    client = make_client("s3")
    create_bucket(client, f"owned-{backend}")
    s3_requests.clear()
    store = open_s3_store(client, f"owned-{backend}", backend=backend, expected_bucket_owner=OWNER)
    # WHEN every operation of the store interface runs
    assert store.versioning_enabled()
    first = store.put("t/a", b"{}", {"format": "1"}, if_none_match=True)
    store.put("t/a", b"{}", {"format": "1"}, if_match=first.etag)
    assert store.get("t/a").body == b"{}"
    store.head("t/a", first.version_id)
    assert len(list(store.list_versions("t/"))) == 2
    store.delete("t/a")
    # THEN each request carried the owner, whichever client sent it
    assert len(s3_requests) >= 7
    assert all(owner == OWNER for _, owner in s3_requests), s3_requests
    if backend == "native":
        assert {"native PUT", "native GET", "native HEAD", "native DELETE"} <= {name for name, _ in s3_requests}


def test_the_store_names_the_owner_on_every_request(bucket: Any, s3_requests: list[tuple[str, str | None]]) -> None:
    # GIVEN a store that knows the bucket's owner
    store = S3Store(bucket, "owned", expected_bucket_owner=OWNER)
    # WHEN every operation of the store interface runs
    assert store.versioning_enabled()
    first = store.put("t/a", b"{}", {"format": "1"}, if_none_match=True)
    store.put("t/a", b"{}", {"format": "1"}, if_match=first.etag)
    store.get("t/a")
    store.head("t/a", first.version_id)
    assert [entry.key for entry in store.list_versions("t/")] == ["t/a", "t/a"]
    store.delete("t/a")
    # THEN each request carried the owner
    assert {name for name, _ in s3_requests} >= {"GetBucketVersioning", "PutObject", "GetObject", "HeadObject"}
    assert {"ListObjectVersions", "DeleteObject"} <= {name for name, _ in s3_requests}
    assert all(owner == OWNER for _, owner in s3_requests), s3_requests


def test_without_an_owner_no_header_is_sent(bucket: Any, s3_requests: list[tuple[str, str | None]]) -> None:
    S3Store(bucket, "owned").put("t/a", b"{}", {})
    assert s3_requests == [("PutObject", None)]


def test_the_function_names_the_owner_from_its_environment(
    bucket: Any, s3_requests: list[tuple[str, str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the function's settings with ExpectedBucketOwner (template.yaml sets it)
    for name, value in {"BackupBucket": "owned", "ExpectedBucketOwner": OWNER}.items():
        monkeypatch.setenv(name, value)
    for name in ("BackupPrefix", "PlainTextKeyAsFilename", "MultiTenancyColumn"):
        monkeypatch.delenv(name, raising=False)
    h.reset_runtime()
    try:
        # WHEN it backs up a put and a removal
        records = [put({"id": {"S": "a"}}, seq=1), remove({"id": {"S": "a"}}, seq=2)]
        assert h.handler(event(*records), None) == {"batchItemFailures": []}
    finally:
        h.reset_runtime()
    # THEN the versioning check, the puts and the delete marker all carried it
    operations = [name for name, _ in s3_requests]
    assert operations[0] == "GetBucketVersioning" and operations.count("PutObject") == 2
    assert operations[-1] == "DeleteObject"
    assert {owner for _, owner in s3_requests} == {OWNER}


@pytest.mark.parametrize("value", ["12345", "abcdefghijkl", "1234567890123"])
def test_a_malformed_owner_is_a_settings_error_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="ExpectedBucketOwner="):
        Settings.from_env({"BackupBucket": "b", "ExpectedBucketOwner": value})
    assert Settings.from_env({"BackupBucket": "b", "ExpectedBucketOwner": " "}).expected_bucket_owner is None


@pytest.mark.e2e
def test_every_command_names_the_owner_on_every_s3_request(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, s3_requests: list[tuple[str, str | None]], tmp_path: Any
) -> None:
    # GIVEN a table with a stream and a versioned bucket on moto's server
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    create_table(ddb, "owned-table")
    create_bucket(s3, "owned-e2e")
    for n in range(3):
        ddb.put_item(TableName="owned-table", Item={"pk": {"S": f"p{n}"}, "sk": {"N": str(n)}})
    s3_requests.clear()
    owner = ["--expected-bucket-owner", OWNER]
    base = ["--bucket", "owned-e2e", "--table", "owned-table"]
    # WHEN full-backup, run (S3 checkpoint), history, tables and an export to S3 run with the owner
    commands = [
        ["full-backup", *base, *owner],
        ["run", *base, "--until-idle", *owner],
        ["tables", "--bucket", "owned-e2e", *owner],
        ["export", *base, "--at", "-1s", "--to", "s3://owned-e2e/exports/one/", *owner],
        ["export", *base, "--at", "-1s", "--to", str(tmp_path / "local"), *owner],
    ]
    for command in commands:
        result = CliRunner().invoke(cli, command, catch_exceptions=False)
        assert result.exit_code == 0, (command, result.output)
    # THEN each of their S3 requests carried it
    operations = {name for name, _ in s3_requests}
    assert "GetBucketVersioning" in operations and {"ListObjectVersions", "native LIST"} & operations
    assert {"PutObject", "GetObject", "HeadObject"} <= operations or {"native PUT", "native HEAD"} <= operations
    missing = [name for name, sent in s3_requests if sent != OWNER]
    assert not missing, f"S3 requests without ExpectedBucketOwner: {sorted(set(missing))}"
    assert os.path.isdir(tmp_path / "local")


def test_a_malformed_owner_option_is_one_line_with_exit_code_2() -> None:
    result = CliRunner().invoke(cli, ["tables", "--bucket", "b", "--expected-bucket-owner", "12-34"])
    assert result.exit_code == 2
    assert "is not an AWS account id (12 digits)" in result.output
    assert "Traceback" not in result.output


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["boto3", "native"])
def test_every_put_carries_the_integrity_checksum_object_lock_requires(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """S3 refuses an upload to a bucket with Object Lock default retention unless it carries Content-MD5
    or an x-amz-checksum-* header (S3 user guide, "Using S3 Object Lock"); moto does not check it."""
    pytest.importorskip("awscrt")
    from awscrt import http, s3  # noqa: F401  (s3 first: it binds HttpRequest for its isinstance checks)

    headers_sent: list[dict[str, str]] = []
    original = Endpoint.make_request

    def recording(self: Endpoint, operation_model: Any, request_dict: dict[str, Any]) -> Any:
        if operation_model.name == "PutObject":
            headers_sent.append({name.lower(): str(value) for name, value in request_dict["headers"].items()})
        return original(self, operation_model, request_dict)

    class RecordingRequest(http.HttpRequest):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self.method == "PUT" and sys._getframe(1).f_globals.get("__name__") == "ddb_backup.store.native":
                headers_sent.append({name.lower(): value for name, value in self.headers})

    monkeypatch.setattr(Endpoint, "make_request", recording)
    monkeypatch.setattr(http, "HttpRequest", RecordingRequest)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    client = make_client("s3")
    create_bucket(client, f"locked-{backend}")
    store = open_s3_store(client, f"locked-{backend}", backend=backend)
    # WHEN an image and a tombstone are written
    store.put("t/a", b'{"id":{"S":"a"}}', {"format": "1"})
    store.put("t/a", b"", {"format": "1"})
    # THEN both carry a checksum (botocore's flexible checksums, or the native store's Content-MD5)
    assert len(headers_sent) == 2
    for headers, body in zip(headers_sent, (b'{"id":{"S":"a"}}', b""), strict=True):
        checksums = {name for name in headers if name == "content-md5" or name.startswith("x-amz-checksum-")}
        assert checksums, headers
        if "content-md5" in headers:
            assert headers["content-md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
