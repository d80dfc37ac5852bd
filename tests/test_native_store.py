"""The native S3 path (awscrt): which backend is chosen, and that the function runs on it end to end."""

from __future__ import annotations

from typing import Any

import pytest

from ddb_backup import handler as h
from ddb_backup.aws.clients import make_client
from ddb_backup.format import keys as k
from ddb_backup.lab.demo import create_bucket
from ddb_backup.lab.faults import FaultyStore
from ddb_backup.lab.lambda_sim import ShardDelivery
from ddb_backup.lab.soak import TABLE, Workload, check_versions, quiet_capture_logs
from ddb_backup.store import native
from ddb_backup.store.native import BackendMissing, NativeS3Store, chosen_backend, open_s3_store
from ddb_backup.store.s3 import S3Store

NAMER = k.ItemNamer("", TABLE, plain_text=False)


def test_auto_picks_the_native_client_when_awscrt_is_installed() -> None:
    assert chosen_backend({}) == "native"
    assert chosen_backend({"DDB_BACKUP_S3_CLIENT": "auto"}) == "native"
    assert chosen_backend({"DDB_BACKUP_S3_CLIENT": " Boto3 "}) == "boto3"


def test_without_awscrt_auto_falls_back_to_boto3_and_native_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a deployment whose zip lacks awscrt
    monkeypatch.setattr(native, "native_available", lambda: False)
    # THEN auto uses boto3, and asking for native by name is one clear error naming the setting
    assert chosen_backend({}) == "boto3"
    with pytest.raises(BackendMissing, match="DDB_BACKUP_S3_CLIENT=boto3"):
        chosen_backend({"DDB_BACKUP_S3_CLIENT": "native"})


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(BackendMissing, match="auto, native or boto3"):
        chosen_backend({"DDB_BACKUP_S3_CLIENT": "obstore"})


def test_open_s3_store_builds_the_chosen_store() -> None:
    client = make_client("s3", endpoint_url="http://127.0.0.1:9", region="us-east-1")
    assert isinstance(open_s3_store(client, "b", backend="native"), NativeS3Store)
    assert isinstance(open_s3_store(client, "b", backend="boto3"), S3Store)


@pytest.mark.e2e
def test_keys_with_any_character_round_trip(moto_url: str) -> None:
    # GIVEN the native store on moto's HTTP server
    client = make_client("s3", endpoint_url=moto_url, region="us-east-1")
    create_bucket(client, "bk-native-keys")
    store = NativeS3Store(client, "bk-native-keys")
    # WHEN keys that need escaping, or that a path normaliser would change, are written
    keys = ["t/a b+c%2F", "t/ü€/日本", "t//double", "t/./dot", "t/x?y=z&v#w", "t/~tilde*'()"]
    ids = {key: store.put(key, key.encode(), {"event-name": "INSERT"}).version_id for key in keys}
    # THEN each is read back by name and version, and listed under that exact name
    for key in keys:
        got = store.get(key, ids[key])
        assert (got.body, got.metadata, got.version_id) == (key.encode(), {"event-name": "INSERT"}, ids[key])
    assert sorted(row.key for row in store.list_versions("t/")) == sorted(keys)


@pytest.mark.e2e
def test_the_handler_runs_on_the_native_client_and_converges_under_faults(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Lambda handler on moto's HTTP server, its native store behind 10% injected faults
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    create_bucket(make_client("s3"), "bk-native-faults")
    monkeypatch.setenv("BackupBucket", "bk-native-faults")
    stores: list[FaultyStore] = []

    def faulty(client: Any, bucket: str, **options: Any) -> FaultyStore:
        inner = open_s3_store(client, bucket, **options)
        assert isinstance(inner, NativeS3Store)  # the default backend on an HTTP endpoint
        stores.append(FaultyStore.with_fault_rate(inner, 0.10, seed=len(stores)))
        return stores[-1]

    monkeypatch.setattr(h, "open_s3_store", faulty)
    window = Workload(items=30, seed=5).window(150)
    # WHEN Lambda delivers 150 changes in batches of 25, with cold starts on retries
    delivery = ShardDelivery(_HandlerFunction, batch_size=25, max_attempts=50, cold_start_rate=0.3, seed=5)
    with quiet_capture_logs():
        delivery.deliver(window.records)
    h.reset_runtime()
    # THEN the bucket holds every change in order, and faults did happen
    assert check_versions(S3Store(make_client("s3"), "bk-native-faults"), window, NAMER) == []
    assert sum(store.injected for store in stores) > 0


class _HandlerFunction:
    def __init__(self) -> None:
        h.reset_runtime()

    def __call__(self, records: list[Any]) -> Any:
        return h.handler({"Records": records}, None)


def test_the_expected_bucket_owner_goes_with_every_object_request_and_is_signed() -> None:
    # GIVEN a server that records each request's headers and answers 200
    import http.server
    import threading

    seen: list[dict[str, str]] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append({name.lower(): value for name, value in self.headers.items()})
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("x-amz-version-id", "v1")
            self.send_header("Last-Modified", "Mon, 30 Nov 2026 07:52:43 GMT")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_GET = do_HEAD = do_DELETE = _answer

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = make_client("s3", endpoint_url=f"http://127.0.0.1:{server.server_port}", region="us-east-1")
        store = NativeS3Store(client, "bk", expected_bucket_owner="111122223333")
        # WHEN each hot operation is made
        store.put("t/a", b"x", {"event-name": "INSERT"})
        store.get("t/a", "v1")
        store.head("t/a")
        store.delete("t/a")
    finally:
        server.shutdown()
    # THEN each carried the owner, and the signature covers it (S3 refuses unsigned x-amz-* headers)
    assert len(seen) == 4
    for headers in seen:
        assert headers["x-amz-expected-bucket-owner"] == "111122223333"
        assert "x-amz-expected-bucket-owner" in headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
