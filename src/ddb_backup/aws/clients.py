"""boto3 clients configured one way for the whole project.

Endpoint and region come from the usual AWS settings (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_PROFILE``) unless given here; connection pools are sized to the concurrency we use.

One retry policy for every service (S3, DynamoDB, DynamoDB Streams): botocore's standard mode
(exponential backoff with jitter, throttling-aware) up to ``DEFAULT_MAX_ATTEMPTS`` attempts in all (the
first request and its retries; botocore's own ``max_attempts`` would count retries only); an
endpoint that cannot be reached gives up after 1-6 s (measured on an unused loopback port, varying
with load), for S3 and DynamoDB alike, and ``store.retry`` does not retry it again. Once a request
has been going for ``NOTICE_AFTER_SECONDS`` and a retry starts, ``notify`` (set by the command line;
None in the Lambda function) hears about it once, naming the attempt that starts and why the last failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_POOL = 64
NOTICE_AFTER_SECONDS = 2.0
# No connection was made (EndpointConnectionError includes ConnectTimeoutError), or the server closed it
# without an answer: after botocore's own attempts, not retried again (store.retry) nor taken for "no table".
UNREACHABLE = (EndpointConnectionError, ConnectionClosedError)

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


def _failure(caught_exception: Exception | None, response: Any) -> str | None:
    """What went wrong with an attempt (its exception, or an error answer's code), None when it succeeded."""
    if caught_exception is not None:
        return str(caught_exception)
    if isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], dict):
        error = response[1].get("Error") or {}
        status = response[1].get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error or (isinstance(status, int) and status >= 400):
            code = str(error.get("Code") or "")
            return code if code and not code.isdigit() else f"HTTP {status or code}"  # JSON: Code "503"
    return None


def _on_retry(service: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Callable[..., None]:
    """A ``needs-retry`` hook that remembers, in the request's context, why its last attempt failed.
    Returns None: botocore's own handler decides whether and when to retry."""

    def hook(
        caught_exception: Exception | None = None, request_dict: Any = None, response: Any = None, **_: Any
    ) -> None:
        if isinstance(request_dict, dict):
            context = request_dict.setdefault("context", {})
            context["ddb_backup_failure"] = _failure(caught_exception, response)

    return hook


def _on_attempt(service: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Callable[..., None]:
    """A ``request-created`` hook: as a retry starts (attempt 2 or later: botocore decided to make it),
    once the request has been going for ``NOTICE_AFTER_SECONDS``, tell ``notify`` once per request, e.g.
    ``s3: retrying: attempt 3 of at most 8 (the last one: <why it failed>)``. The note is therefore always
    followed by the attempt it names, and never comes after the last one."""

    def hook(request: Any = None, **_: Any) -> None:
        context = getattr(request, "context", None)
        if not isinstance(context, dict):
            return
        started = context.setdefault("ddb_backup_started", time.monotonic())
        attempt = context.get("retries", {}).get("attempt", 1)
        waited = time.monotonic() - started
        if (
            attempt > 1
            and notify is not None
            and not context.get("ddb_backup_noticed")
            and waited >= NOTICE_AFTER_SECONDS
        ):
            context["ddb_backup_noticed"] = True
            reason = context.get("ddb_backup_failure") or "throttled or a server error"
            notify(f"{service}: retrying: attempt {attempt} of at most {max_attempts} (the last one: {reason})")

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
    client.meta.events.register("request-created", _on_attempt(service, max_attempts))
    return client
