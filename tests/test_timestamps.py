"""The fast timestamp parser gives what botocore's own parser gives, for every shape AWS answers."""

from __future__ import annotations

from datetime import datetime

import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp
from hypothesis import given
from hypothesis import strategies as st

from ddb_backup.aws.clients import make_client
from ddb_backup.aws.timestamps import parse_timestamp


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2999, 1, 1)))
def test_iso_8601_in_utc_parses_as_botocore_does(moment: datetime) -> None:
    seconds = moment.strftime("%Y-%m-%dT%H:%M:%S")
    for text in (f"{seconds}.{moment.microsecond // 1000:03d}Z", f"{seconds}Z"):
        assert parse_timestamp(text) == botocore_parse_timestamp(text)


@pytest.mark.parametrize(
    "text",
    ["Mon, 30 Nov 2026 07:52:43 GMT", "2026-11-30T07:52:43+01:00", "1764000000", "1764000000.5", 1764000000.25,
     "2026-11-30T07:52:43.123456Z", "2026-13-30T07:52:43.000Z"],
)  # fmt: skip
def test_other_shapes_go_to_botocore(text: object) -> None:
    try:
        expected = botocore_parse_timestamp(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_timestamp(text)
        return
    assert parse_timestamp(text) == expected


def test_our_s3_clients_use_it() -> None:
    client = make_client("s3", endpoint_url="http://127.0.0.1:9", region="us-east-1")
    parser = client._endpoint._response_parser_factory.create_parser("rest-xml")
    assert parser._timestamp_parser is parse_timestamp
