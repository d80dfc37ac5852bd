"""The embedded AWS emulator (moto's HTTP server on 127.0.0.1) for the demo and end-to-end tests."""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

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
