"""boto3 clients configured one way for the whole project.

Endpoint and region come from the usual AWS settings (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_PROFILE``) unless given here; connection pools are sized to the concurrency we use.

One retry policy for every service (S3, DynamoDB, DynamoDB Streams): botocore's standard mode
(exponential backoff with jitter, throttling-aware) up to ``DEFAULT_MAX_ATTEMPTS`` attempts in all (the
first request and its retries; botocore's own ``max_attempts`` would count retries only); an
endpoint that cannot be reached gives up after 1-6 s (measured on an unused loopback port, varying
with load), for S3 and DynamoDB alike, and ``store.retry`` does not retry it again. Once a request
has been retrying for ``NOTICE_AFTER_SECONDS``, ``notify`` (set by the command line; None in the
Lambda function) hears about it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_POOL = 64
NOTICE_AFTER_SECONDS = 2.0
UNREACHABLE = (EndpointConnectionError,)  # includes ConnectTimeoutError: no connection was made

# Where retry notices go: the command line sets it (stderr); the library stays quiet by default.
notify: Callable[[str], None] | None = None


def client_config(*, max_pool: int = DEFAULT_POOL, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},  # "max_attempts" would count retries
        max_pool_connections=max_pool,
        connect_timeout=5,
        read_timeout=30,
        # Streams calls go to the plain regional endpoint (moto answers 404 otherwise).
        account_id_endpoint_mode="disabled",
    )


def fast_timestamps(session: Any) -> None:
    """Parse response timestamps with ``ddb_backup.aws.timestamps.parse_timestamp`` in this session's clients
    made from now on: botocore's own parser was 65% of a 1,000-version listing page's CPU (issue 16)."""
    from ddb_backup.aws.timestamps import parse_timestamp

    factory = session._session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)


def _on_retry(service: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Callable[..., None]:
    """A ``needs-retry`` hook that tells ``notify`` once per request when retries have gone on for a while
    (not after the last of ``max_attempts``: nothing is still trying then). Returns None: botocore's own
    handler decides whether and when to retry."""

    def hook(attempts: int = 0, caught_exception: Exception | None = None, request_dict: Any = None, **_: Any) -> None:
        context = request_dict.get("context", {}) if isinstance(request_dict, dict) else {}
        started = context.setdefault("ddb_backup_started", time.monotonic())
        failing = (caught_exception is not None or attempts > 1) and attempts < max_attempts
        waited = time.monotonic() - started
        if failing and notify is not None and not context.get("ddb_backup_noticed") and waited >= NOTICE_AFTER_SECONDS:
            context["ddb_backup_noticed"] = True
            reason = caught_exception or "throttled or a server error"
            notify(f"{service}: still trying after {attempts} attempts ({reason})")

    return hook


def make_client(
    service: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    max_pool: int = DEFAULT_POOL,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    session: Any = None,
) -> Any:
    """A client for ``service``; ``endpoint_url``/``region`` beat the environment when given."""
    session = session or boto3.session.Session()
    fast_timestamps(session)
    client = session.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        config=client_config(max_pool=max_pool, max_attempts=max_attempts),
    )
    client.meta.events.register("needs-retry", _on_retry(service, max_attempts))  # every operation of this client
    return client
