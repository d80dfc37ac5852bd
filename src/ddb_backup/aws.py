"""boto3 clients configured one way for the whole project.

Endpoint and region come from the usual AWS settings (``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_PROFILE``) unless given here; retries use botocore's standard mode (exponential backoff with
jitter, throttling-aware), connection pools are sized to the concurrency we use.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_POOL = 64


def client_config(*, max_pool: int = DEFAULT_POOL, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=max_pool,
        connect_timeout=5,
        read_timeout=30,
        # Streams calls go to the plain regional endpoint (moto answers 404 otherwise).
        account_id_endpoint_mode="disabled",
    )


def fast_timestamps(session: Any) -> None:
    """Parse response timestamps with ``ddb_backup.timestamps.parse_timestamp`` in this session's clients
    made from now on: botocore's own parser was 65% of a 1,000-version listing page's CPU (issue 16)."""
    from ddb_backup.timestamps import parse_timestamp

    factory = session._session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)


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
    return session.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        config=client_config(max_pool=max_pool, max_attempts=max_attempts),
    )
