"""The embedded AWS emulator (moto's HTTP server on 127.0.0.1) for the demo and end-to-end tests."""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
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
    fix_moto_key_marker()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset(url: str) -> None:
    """Forget everything the emulator holds."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a while, then put back what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def local_credentials() -> AbstractContextManager[None]:
    """Dummy credentials and region for the emulator, restored afterwards."""
    return environment(LOCAL_CREDENTIALS)


def fix_moto_key_marker() -> None:
    """Make moto's ListObjectVersions honour a ``KeyMarker`` alone the way S3 does.

    S3 lists the versions of the keys after the marker. moto 5.2 (with no ``VersionIdMarker``) keeps
    keys ``>=`` the marker and drops the first version it finds, so every key range but the first
    loses a version. The fix hands moto the exact entry just before the first key after the marker
    as a (key, version) pair, which it does honour. Idempotent; only the emulator is touched.
    """
    from moto.s3.models import S3Backend

    original = S3Backend.list_object_versions
    if getattr(original, "_ddb_backup_fixed", False):
        return

    def list_object_versions(self: Any, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        key_marker = kwargs.get("key_marker")
        if key_marker and not kwargs.get("version_id_marker"):
            before = _last_entry_up_to(self.get_bucket(bucket_name), key_marker)
            kwargs["key_marker"] = None if before is None else before.name
            kwargs["version_id_marker"] = None if before is None else before.version_id
        return original(self, bucket_name, *args, **kwargs)

    list_object_versions._ddb_backup_fixed = True  # type: ignore[attr-defined]
    S3Backend.list_object_versions = list_object_versions  # type: ignore[method-assign]


def _last_entry_up_to(bucket: Any, key_marker: str) -> Any:
    """The entry moto sorts last among keys ``<= key_marker`` (name, then newest first), or None."""
    names = [name for name in bucket.keys if name <= key_marker]
    if not names:
        return None
    versions = bucket.keys.getlist(max(names))
    from moto.core.utils import unix_time_millis

    return sorted(versions, key=lambda version: -unix_time_millis(version.last_modified))[-1]
