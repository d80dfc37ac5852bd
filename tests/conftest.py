"""Shared fixtures: never touch real AWS, and give each test fresh fakes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import hypothesis_profiles
from ddb_backup.lab.emulator import fix_moto_key_marker
from ddb_backup.store.memory import MemoryStore

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "DdbBackupTests",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
hypothesis_profiles.load()  # derandomised in `make test`, random and longer in `make soak`
fix_moto_key_marker()  # moto drops a version when listing from a KeyMarker alone (lab/emulator.py)


@pytest.fixture(autouse=True)
def s3_client_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto (mock_aws) patches boto3 only, so those tests use the boto3 store; tests over
    moto's HTTP server (``e2e``) take the default, the native client, as the Lambda function does."""
    from ddb_backup.store.native import S3_CLIENT_ENV

    if request.node.get_closest_marker("e2e") is None:
        monkeypatch.setenv(S3_CLIENT_ENV, "boto3")
    else:
        monkeypatch.delenv(S3_CLIENT_ENV, raising=False)


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def moto_url() -> Iterator[str]:
    """moto's HTTP server on 127.0.0.1 (end-to-end tests)."""
    from ddb_backup.lab.emulator import moto_server

    with moto_server() as url:
        yield url
