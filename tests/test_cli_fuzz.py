"""No input gives a traceback (issue 14.2): every command's every option, valid, mistyped or junk,
through click's CliRunner against an in-process emulator (moto's ``mock_aws``: no network, no retries
to wait for). Each run ends with one of the documented exit codes and never with an uncaught exception.

Two strategies: a random subset of a command's options (most runs stop at the first wrong one), and a
working invocation with exactly one option made wrong (NaN, inf, huge numbers, durations over a year, a
file where a folder goes, an empty string): a value read late only shows when everything before it works.

The options are read from the commands themselves, so a new option is fuzzed without touching this file.
``demo`` is left out: it starts an emulator server of its own (its options are a flag and a seed).

Kept fast for ``make test`` (derandomised, a few hundred runs in well under a minute); ``make soak`` runs
ten times as many, random. What keeps a run short: one bucket for all runs, clients built once, each run
in a fresh empty folder, no value that makes a command wait (rates, the grace period and every junk
value given to them hold no digit), and the stream runner reads no stream (its table has none: it stops
at the stream lookup, after its options are checked).
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from cli_support import BUCKET, error_lines, fill_bucket
from ddb_backup.cli import EXIT_CODES, cli
from ddb_backup.cli.common import Aws, Rate
from hypothesis_profiles import scaled

AWS_OPTIONS = {"endpoint_url", "region", "profile"}  # kept in-process: the emulator
FUZZED = sorted(name for name in cli.commands if name != "demo")

JUNK = st.text(max_size=12) | st.sampled_from(["", " ", "-", "--", "{", "null", "nan", "-1", "0", "1e999", "é", "\x00"])
NO_DIGITS = st.text(st.characters(blacklist_categories=["Nd"]), max_size=12)  # never a number (no waiting)
TIMES = st.sampled_from(
    ["-15m", "-0s", "-2h", "1795773600", "1795773600000", "99999999999999999", "2026-11-27T10:00:00Z",
     "2026-11-27T10:00:00", "2099-01-01T00:00:00Z", "yesterday", "-99999999999d", "0", "-1", "nan", "-1e999h"]
)  # fmt: skip
KEYS = st.sampled_from(
    ['{"pk":"p1","sk":1}', '{"pk":{"S":"p1"},"sk":{"N":"1"}}', '{"pk":"p1"}', '{"pk":"p9","sk":9}', "[]", "{}",
     '{"pk":"p1","sk":' + "9" * 39 + "}", '{"pk":{"S":""}}', '{"pk":{"B":"@@"}}', '{"pk":null}', '{"pk":1.5e400}',
     '{"pk":"p1","sk":NaN}', '{"pk":"p1","sk":Infinity}']
)  # fmt: skip
TABLES = st.sampled_from(["orders", "teams", "ordres", "", "ab", "x" * 256, "bad name!", "ørders"])
NAMES = {
    "bucket": st.sampled_from([BUCKET, "no-such-bucket", "Bad_Bucket!"]),
    "prefix": st.sampled_from(["prod", "", "staging", "/", "prod/", "a//b"]),
    "table": TABLES,
    "source": TABLES,
    "target": st.sampled_from(["copy", "orders", "", "c", "bad name!", "x" * 256]),
    "tenant": st.sampled_from(["acme", "acne", "%none", "", "a/b"]),
    "tenant_column": st.sampled_from(["org", "", "nope"]),
    "key_text": KEYS,
    "key_texts": KEYS,
    "at_text": TIMES,
    "start_text": TIMES,
    "end_text": TIMES,
    "max_lag": st.sampled_from(["25h", "0", "-5m", "soon", "1e999", "nan", "inf", "99999999999999d", "367d"]),
    "grace": st.sampled_from(["0s", "-1", "soon", "1e999", "nan", "inf", "99999999999999d", "367d", "1e400s"]),
}
NUMBERS = ["0", "-1", "1.5", "1e999", "nan", "inf", "-inf", "NaN", "Infinity", "1e308", "", "1000000", "2147483648"]
RATES = st.sampled_from(["500", "1e6", "1e308", "0.5", "1e-300", *NUMBERS])  # no small valid rate: no waiting
# Local paths (relative: each run is in a fresh empty folder holding `a-file`): the right kind, the wrong
# kind (a file where a folder goes, a folder where a file goes, a path below a file), and none at all.
WRONG_KIND = ["a-file", "a-file/below", ".", "", " ", "/nonexistent/x", "nul\x00.json"]
FILES = st.sampled_from(["state.json", "s3://backups/cp.json", "s3://no-such/cp.json", "s3://", *WRONG_KIND])
FOLDERS = st.sampled_from(["export", "new/export", "s3://backups/exports/", "s3://", "s3://no-such/x/", *WRONG_KIND])


def value_for(param: click.Option) -> st.SearchStrategy[str]:
    """Values for one option: its likely right values, wrong ones and junk."""
    name = param.name or ""
    if name == "grace":
        return NAMES[name] | NO_DIGITS  # a junk number of seconds would make verify wait that long
    if isinstance(param.type, Rate):
        return RATES | NO_DIGITS
    if name in NAMES:
        return NAMES[name] | JUNK
    if name in {"checkpoint", "rejects"}:
        return FILES | JUNK
    if param.opts == ["--to"]:
        return FOLDERS | JUNK
    if isinstance(param.type, click.Choice):
        return st.sampled_from([str(choice) for choice in param.type.choices]) | JUNK
    if isinstance(param.type, click.types._NumberParamTypeBase):
        return st.integers(-5, 2_000).map(str) | st.sampled_from(NUMBERS) | JUNK
    return JUNK


def fuzzed_options(command: Any) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name not in AWS_OPTIONS | {"help"}]


@st.composite
def invocations(draw: st.DrawFn) -> list[str]:
    """A command and a random subset of its options, in random order."""
    command: Any = cli.commands[draw(st.sampled_from(FUZZED))]
    args = [command.name]
    for param in draw(st.permutations(fuzzed_options(command))):
        if not draw(st.booleans()) and not (param.required and draw(st.integers(0, 9)) > 0):
            continue
        if param.is_flag:
            args.append(param.opts[0] if not param.secondary_opts or draw(st.booleans()) else param.secondary_opts[0])
            continue
        args += [param.opts[0], draw(value_for(param))]
    if command.name == "run":
        args.append("--until-idle")  # the stream runner otherwise waits for new records forever
    if command.name == "verify" and "--grace" not in args:
        args += ["--grace", "0s"]  # drift is read again after the grace period: no 60 s waits here
    return args


RIGHT = {  # an invocation of each command that works against the bucket (`run`: up to its stream lookup)
    "tables": ["--bucket", BUCKET, "--prefix", "prod"],
    "history": ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--key", '{"pk":"p1","sk":1}'],
    "diff": ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--from", "-1h", "--to", "-0s"],
    "export": ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--at", "-0s", "--to", "export"],
    "full-backup": ["--bucket", BUCKET, "--prefix", "scratch", "--table", "orders"],
    "restore": ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--at", "-0s", "--to-table", "copy",
                "--dry-run", "--checkpoint", "restore.json"],
    "run": ["--bucket", BUCKET, "--table", "orders", "--until-idle"],
    "verify": ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--grace", "0s"],
}  # fmt: skip


@st.composite
def one_wrong_option(draw: st.DrawFn) -> list[str]:
    """A working invocation with one option replaced by a wrong or junk value (NaN, inf, a huge duration,
    a file where a folder goes, an empty string): random subsets rarely keep the rest right, and a bad
    value read late (after a full scan) only shows when everything before it works."""
    name = draw(st.sampled_from(sorted(RIGHT)))
    param = draw(st.sampled_from(fuzzed_options(cli.commands[name])))
    base = list(RIGHT[name])
    for opt in param.opts + param.secondary_opts:  # drop the option's right value, if the base gives one
        while opt in base:
            at = base.index(opt)
            del base[at : at + (1 if param.is_flag else 2)]
    if param.is_flag:
        return [name, *base, draw(st.sampled_from(param.opts + param.secondary_opts))]
    if name == "verify" and param.name != "grace":
        base += ["--grace", "0s"]
    return [name, *base, param.opts[0], draw(value_for(param))]


@pytest.fixture(scope="module")
def emulated() -> Iterator[None]:
    """One bucket for every run (cli_support.fill_bucket), and one client per service: building boto3
    clients is most of a short run's time, and no option changes them here."""
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        fill_bucket()
        patch.setattr(Aws, "client", functools.cache(Aws.client))
        yield


@contextlib.contextmanager
def empty_folder() -> Iterator[None]:
    """Each run in a fresh folder holding only `a-file` (the file of the wrong kind the paths above name):
    no checkpoint or export of an earlier run changes what a later one does."""
    with tempfile.TemporaryDirectory(prefix="ddb-backup-fuzz-") as folder, contextlib.chdir(folder):
        Path("a-file").write_text("not a folder")
        yield


def check(args: list[str]) -> None:
    with empty_folder():
        result = CliRunner().invoke(cli, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"ddb-backup {' '.join(args)!r} raised") from result.exception
    assert result.exit_code in EXIT_CODES, (args, result.output)
    assert "Traceback" not in result.output
    if result.exit_code in (2, 3, 5):  # an error: one line saying so (click's usage errors add the usage above)
        assert error_lines(result) == 1, result.output


@settings(max_examples=scaled(200), deadline=None, suppress_health_check=list(HealthCheck))
@given(invocations())
def test_no_input_gives_a_traceback(emulated: None, args: list[str]) -> None:
    check(args)


@settings(max_examples=scaled(200), deadline=None, suppress_health_check=list(HealthCheck))
@given(one_wrong_option())
def test_one_wrong_option_among_right_ones_gives_no_traceback(emulated: None, args: list[str]) -> None:
    check(args)


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_the_right_invocations_are_right(emulated: None, name: str) -> None:
    """The base of `one_wrong_option` works (else every one of its runs would stop at the same error)."""
    with empty_folder():
        result = CliRunner().invoke(cli, [name, *RIGHT[name]])
    expected = {"run": 2, "verify": 1}.get(name, 0)  # run: no stream on the table; verify: the table is empty
    assert result.exit_code == expected, result.output
