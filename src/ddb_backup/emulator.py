"""The embedded AWS emulator (moto's HTTP server on 127.0.0.1) for the demo and end-to-end tests."""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class EmulatorMissing(RuntimeError):
    """moto is not installed."""


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto on a free port of 127.0.0.1, yield its URL, stop it on the way out."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as err:
        raise EmulatorMissing(
            "the embedded emulator needs moto: pip install 'ddb-backup[dev]' (make demo does this)"
        ) from err
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    fix_list_versions_key_marker()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def fix_list_versions_key_marker() -> None:
    """Make moto's ListObjectVersions honour a ``KeyMarker`` given alone as S3 does: every key after it.

    moto 5.2 drops the first version after such a marker (and lists later versions of the marker's
    own key); restore lists key ranges from a marker, so the emulator must behave like S3. The fix
    turns the marker into moto's working form: the last version at or before it, as key and version id.
    """
    from moto.s3.models import S3Backend, unix_time_millis

    original = S3Backend.list_object_versions
    if getattr(original, "key_marker_fixed", False):
        return

    def list_object_versions(
        self: Any,
        bucket_name: str,
        delimiter: str | None = None,
        key_marker: str | None = None,
        max_keys: int | None = 1000,
        prefix: str = "",
        version_id_marker: str | None = None,
    ) -> Any:
        if key_marker and not version_id_marker:
            listed = [version for _, versions in self.get_bucket(bucket_name).keys.iterlists() for version in versions]
            listed.sort(key=lambda v: (v.name, -unix_time_millis(v.last_modified)))  # moto's own order
            before = [version for version in listed if version.name <= key_marker]
            key_marker, version_id_marker = (before[-1].name, before[-1].version_id) if before else (None, None)
        return original(self, bucket_name, delimiter, key_marker, max_keys, prefix, version_id_marker)

    list_object_versions.key_marker_fixed = True  # type: ignore[attr-defined]
    S3Backend.list_object_versions = list_object_versions  # type: ignore[method-assign]


def reset(url: str) -> None:
    """Forget everything the emulator holds."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


@contextmanager
def local_credentials() -> Iterator[None]:
    """Dummy credentials and region for the emulator, restored afterwards."""
    saved = {name: os.environ.get(name) for name in LOCAL_CREDENTIALS}
    os.environ.update(LOCAL_CREDENTIALS)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
