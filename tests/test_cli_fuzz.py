"""No input gives a traceback (issue 14.2): every command's every option, valid, mistyped or junk,
through click's CliRunner against an in-process emulator (moto's ``mock_aws``: no network, no retries
to wait for). Each run ends with one of the documented exit codes and never with an uncaught exception.

The options are read from the commands themselves, so a new option is fuzzed without touching this file.
``demo`` is left out: it starts an emulator server of its own (its options are a flag and a seed).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from builders import put
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.cli import EXIT_CODES, cli
from ddb_backup.format import keys as k
from ddb_backup.store.s3 import S3Store
from hypothesis_profiles import scaled

BUCKET = "backups"
AWS_OPTIONS = {"endpoint_url", "region", "profile"}  # kept in-process: the emulator
FUZZED = sorted(name for name in cli.commands if name != "demo")
AT = time.time() - 600

JUNK = st.text(max_size=12) | st.sampled_from(["", " ", "-", "--", "{", "null", "nan", "-1", "0", "1e999", "é", "\x00"])
TIMES = st.sampled_from(
    ["-15m", "-0s", "-2h", "1795773600", "1795773600000", "99999999999999999", "2026-11-27T10:00:00Z",
     "2026-11-27T10:00:00", "2099-01-01T00:00:00Z", "yesterday", "-99999999999d", "0", "-1"]
)  # fmt: skip
KEYS = st.sampled_from(
    ['{"pk":"p1","sk":1}', '{"pk":{"S":"p1"},"sk":{"N":"1"}}', '{"pk":"p1"}', '{"pk":"p9","sk":9}', "[]", "{}",
     '{"pk":"p1","sk":' + "9" * 39 + "}", '{"pk":{"S":""}}', '{"pk":{"B":"@@"}}', '{"pk":null}', '{"pk":1.5e400}']
)  # fmt: skip
NAMES = {
    "bucket": st.sampled_from([BUCKET, "no-such-bucket", "Bad_Bucket!"]),
    "prefix": st.sampled_from(["prod", "", "staging", "/", "prod/", "a//b"]),
    "table": st.sampled_from(["orders", "teams", "ordres", "", "x" * 300]),
    "source": st.sampled_from(["orders", "teams", "ordres"]),
    "target": st.sampled_from(["copy", "orders", "", "bad name!"]),
    "tenant": st.sampled_from(["acme", "acne", "%none", "", "a/b"]),
    "tenant_column": st.sampled_from(["org", "", "nope"]),
    "key_text": KEYS,
    "key_texts": KEYS,
    "at_text": TIMES,
    "start_text": TIMES,
    "end_text": TIMES,
    "max_lag": st.sampled_from(["25h", "0", "-5m", "soon", "1e999"]),
    "grace": st.sampled_from(["0s", "0.1", "-1", "soon", "1e999"]),  # not the 60 s default: no waiting
}


def value_for(param: click.Option, folder: Path) -> st.SearchStrategy[str]:
    """Values for one option: its likely right values, wrong ones and junk."""
    name = param.name or ""
    if name in NAMES:
        return NAMES[name] | JUNK
    if name in {"checkpoint", "rejects"}:
        return st.sampled_from([str(folder / "state.json"), str(folder), "s3://backups/cp.json", "/nonexistent/x"])
    if name == "target" or param.opts == ["--to"]:
        return st.sampled_from([str(folder / "export"), "s3://backups/exports/", "s3://", "s3://no-such/x/"]) | JUNK
    if isinstance(param.type, click.Choice):
        return st.sampled_from([str(choice) for choice in param.type.choices]) | JUNK
    if isinstance(param.type, click.types._NumberParamTypeBase):
        return st.integers(-5, 2_000_000).map(str) | st.sampled_from(["0", "-1", "1.5", "1e999", "nan"]) | JUNK
    return JUNK


@st.composite
def invocations(draw: st.DrawFn, folder: Path) -> list[str]:
    """A command and a random subset of its options, in random order."""
    command: Any = cli.commands[draw(st.sampled_from(FUZZED))]
    args = [command.name]
    options = [p for p in command.params if isinstance(p, click.Option) and p.name not in AWS_OPTIONS]
    for param in draw(st.permutations(options)):
        if param.name == "help" or (not draw(st.booleans()) and not (param.required and draw(st.integers(0, 9)) > 0)):
            continue
        if param.is_flag:
            args.append(param.opts[0] if not param.secondary_opts or draw(st.booleans()) else param.secondary_opts[0])
            continue
        args += [param.opts[0], draw(value_for(param, folder))]
    if command.name == "run":
        args.append("--until-idle")  # the stream runner otherwise waits for new records forever
    if command.name == "verify" and "--grace" not in args:
        args += ["--grace", "0s"]  # drift is read again after the grace period: no 60 s waits here
    return args


@pytest.fixture(scope="module")
def emulated() -> Iterator[None]:
    """One bucket for every example: `orders` (3 items) and `teams` (tenants acme, globex) under `prod`;
    the live table `orders` (no stream)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        store = S3Store(s3, BUCKET)
        schema = k.KeySchema("pk", "sk")
        key = lambda n: {"pk": {"S": f"p{n}"}, "sk": {"N": str(n)}}  # noqa: E731
        plain = Capture(store, CaptureSettings(prefix="prod"), lambda table: schema)
        assert not plain.process([put(key(n), {"v": {"N": str(n)}}, at=AT) for n in range(3)]).failures
        tenanted = Capture(store, CaptureSettings(prefix="prod", tenant_column="org"), lambda table: schema)
        records = [put(key(n), {"org": {"S": org}}, table="teams", at=AT) for n, org in enumerate(["acme", "globex"])]
        assert not tenanted.process(records).failures
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


FOLDER = Path(tempfile.mkdtemp(prefix="ddb-backup-fuzz-"))


@settings(max_examples=scaled(200), deadline=None, suppress_health_check=list(HealthCheck))
@given(invocations(FOLDER))
def test_no_input_gives_a_traceback(emulated: None, args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"ddb-backup {' '.join(args)!r} raised") from result.exception
    assert result.exit_code in EXIT_CODES, (args, result.output)
    assert "Traceback" not in result.output
    if result.exit_code in (2, 3, 5):  # an error: one line saying so (click's usage errors add the usage above)
        assert sum(line.lower().startswith("error:") for line in result.output.splitlines()) == 1, result.output
