"""Issue 14 (tester's findings on main): how every command ends on a refused local path, Ctrl-C, a closed
stdout, a key or bucket name no form may hold, and what the retry note and the connection error say."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from moto import mock_aws

from cli_support import BUCKET, fill_bucket, invoke, one_line_error, tables_of
from ddb_backup.aws import clients as aws
from ddb_backup.cli import common
from ddb_backup.format import keys as k

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bucket() -> Iterator[Any]:
    with mock_aws():
        yield fill_bucket()


READS = ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders"]
EVERY_COMMAND = {
    "full-backup": ["full-backup", "--bucket", BUCKET, "--table", "orders"],
    "run": ["run", "--bucket", BUCKET, "--table", "orders", "--until-idle"],
    "history": ["history", *READS, "--key", '{"pk":"p1","sk":1}'],
    "diff": ["diff", *READS, "--from", "-1h", "--to", "-1m"],
    "verify": ["verify", *READS],
    "export": ["export", *READS, "--at", "-1m", "--to", "EXPORT"],
    "tables": ["tables", "--bucket", BUCKET, "--prefix", "prod"],
    "restore": ["restore", *READS, "--at", "-1m", "--to-table", "orders_copy", "--yes", "--checkpoint", "CP"],
}


def command_args(name: str, tmp_path: Path) -> list[str]:
    paths = {"EXPORT": str(tmp_path / "export"), "CP": str(tmp_path / "cp.json")}
    return [paths.get(arg, arg) for arg in EVERY_COMMAND[name]]


# -- 1: one rule for every local output path, checked before anything is touched ------------------------


def test_restore_with_a_checkpoint_in_a_missing_folder_creates_nothing(bucket: Any, tmp_path: Path) -> None:
    missing = str(tmp_path / "nonexist" / "x" / "cp.json")
    result = invoke("restore", *READS, "--at", "-1m", "--to-table", "orders_copy", "--yes", "--checkpoint", missing)
    assert one_line_error(result, 2), result.output
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert "orders_copy" not in tables_of(bucket)
    assert not (tmp_path / "nonexist").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["restore", *READS, "--at", "-1m", "--to-table", "orders_copy", "--yes", "--rejects", "MISSING/r.jsonl"],
        ["run", "--bucket", BUCKET, "--table", "orders", "--until-idle", "--checkpoint", "MISSING/cp.json"],
        ["export", *READS, "--at", "-1m", "--to", "MISSING/export"],
    ],
)
def test_every_local_output_path_in_a_missing_folder_is_refused(bucket: Any, tmp_path: Path, args: list[str]) -> None:
    result = invoke(*[arg.replace("MISSING", str(tmp_path / "no" / "such")) for arg in args])
    assert one_line_error(result, 2), result.output
    assert "does not exist" in result.output
    assert not (tmp_path / "no").exists()  # no folder made
    assert "orders_copy" not in tables_of(bucket)


def test_a_local_path_in_an_existing_folder_is_taken(bucket: Any, tmp_path: Path) -> None:
    result = invoke("export", *READS, "--at", "-1m", "--to", str(tmp_path / "export"))
    assert result.exit_code == 0, result.output


# -- 2 and 7: Ctrl-C exits 130 and a closed stdout 141 from every command, one line or none -------------


def raising(error: BaseException) -> Any:
    def client(*_: Any, **__: Any) -> Any:
        raise error

    return client


@pytest.mark.parametrize("name", sorted(EVERY_COMMAND))
def test_ctrl_c_in_any_command_exits_130_with_one_line(
    bucket: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(common.Aws, "client", raising(KeyboardInterrupt()))
    result = invoke(*command_args(name, tmp_path))
    assert result.exit_code == 130, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == ["interrupted"] or name == "restore", result.output
    assert "Aborted!" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", sorted(EVERY_COMMAND))
def test_a_closed_stdout_exits_141_without_a_word(
    bucket: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(common.Aws, "client", raising(BrokenPipeError(32, "Broken pipe")))
    result = invoke(*command_args(name, tmp_path))
    assert result.exit_code == 141, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and result.output == ""


def test_ctrl_c_at_a_prompt_is_130_and_the_end_of_input_stays_a_decline() -> None:
    """click's prompts turn Ctrl-C into ``Abort`` (its context the KeyboardInterrupt), as at restore's
    confirmation; closed input is ``Abort`` too and keeps click's exit 1 (restore: declined)."""
    from click.testing import CliRunner

    from ddb_backup.cli import cli

    @click.command("asks")
    @click.option("--interrupt", is_flag=True)
    def asks(interrupt: bool) -> None:
        if interrupt:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise click.Abort() from None  # as click.termui.confirm does
        click.confirm("go on?", abort=True)

    cli.add_command(asks)
    try:
        interrupted = CliRunner().invoke(cli, ["asks", "--interrupt"])
        declined = CliRunner().invoke(cli, ["asks"], input="")
    finally:
        cli.commands.pop("asks")
    assert interrupted.exit_code == 130 and interrupted.output.strip() == "interrupted"
    assert declined.exit_code == 1


def run_entry(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t", AWS_DEFAULT_REGION="us-east-1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


def test_ctrl_c_while_the_cli_is_still_importing_exits_130_quietly() -> None:
    """A SIGINT arrives exactly when ``ddb_backup.cli`` starts importing (deterministic: the import
    itself sends it)."""
    code = """
import os, signal, sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "ddb_backup.cli":
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["ddb-backup", "--help"]
from ddb_backup.entry import main
main()
"""
    done = run_entry(code)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip() == "interrupted"


def test_the_console_entry_point_is_light_and_is_the_command() -> None:
    done = run_entry("import sys, ddb_backup.entry; print(sorted(m for m in ('click', 'boto3') if m in sys.modules))")
    assert done.stdout.strip() == "[]", done.stderr
    assert 'ddb-backup = "ddb_backup.entry:main"' in (ROOT / "pyproject.toml").read_text()
    done = run_entry("import sys; sys.argv = ['ddb-backup', '--version']; from ddb_backup.entry import main; main()")
    assert done.returncode == 0 and "ddb-backup" in done.stdout


# -- 4: one key parser for both JSON forms ------------------------------------------------------------


@pytest.mark.parametrize(
    "key_text", ['{"pk":{"S":"p1"},"sk":{"N":"' + "9" * 39 + '"}}', '{"pk":"p1","sk":' + "9" * 39 + "}"]
)
@pytest.mark.parametrize("command", ["history", "restore"])
def test_a_39_digit_number_is_refused_alike_in_both_key_forms(
    bucket: Any, tmp_path: Path, key_text: str, command: str
) -> None:
    extra = ["--at", "-1m", "--to-table", "orders_copy", "--yes"] if command == "restore" else []
    result = invoke(command, *READS, *extra, "--key", key_text)
    assert one_line_error(result, 2), result.output
    assert "38 digits" in result.output
    assert "orders_copy" not in tables_of(bucket)


@pytest.mark.parametrize(
    "number", ["1E40", "1E125", "9.9999999999999999999999999999999999999E+125", "1E-130", "-1.5E100"]
)
def test_a_big_or_tiny_number_dynamodb_stores_is_a_key_both_commands_take(number: str) -> None:
    """A fresh tester's finding: 1E40 was refused as more than 38 digits (its written-out form has 41)."""
    from ddb_backup.inspect.history import parse_key

    assert parse_key(f'{{"pk":{{"N":"{number}"}}}}') == {"pk": {"N": k.canonical_number(number)}}
    for refused in ("1E126", "1E-131", "1" * 39, "1.00000000000000000000000000000000000001E50"):
        with pytest.raises(ArithmeticError):
            parse_key(f'{{"pk":{{"N":"{refused}"}}}}')


# -- 5: one bucket-name rule for every bucket argument ------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["tables", "--bucket", "a!b"],
        ["export", *READS, "--at", "-1m", "--to", "s3://a!b/x"],
        ["run", "--bucket", BUCKET, "--table", "orders", "--until-idle", "--checkpoint", "s3://a!b/cp.json"],
        ["history", "--bucket", "xn--bucket", "--table", "orders", "--key", '{"pk":"p1","sk":1}'],
        ["tables", "--bucket", "192.168.1.1"],
    ],
)
def test_an_invalid_bucket_name_is_refused_alike_everywhere(bucket: Any, args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "not a valid S3 bucket name" in result.output and "does not exist" not in result.output


@pytest.mark.parametrize("name", ["backups", "my.bucket-1", "a" * 63, "abc", "Legacy_Backups", "A" * 255])
def test_valid_bucket_names_pass_the_rule(name: str) -> None:
    # a legacy us-east-1 name (capitals, underscores) is a real bucket some users still back up into
    assert common.bucket_name_problem(name) is None


@pytest.mark.parametrize(
    "args",
    [
        ["tables", "--bucket", "A_B"],
        ["export", *READS, "--at", "-1m", "--to", "s3://A_B/x"],
    ],
)
def test_a_missing_legacy_named_bucket_is_missing_alike_everywhere(bucket: Any, args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 5, result.output
    assert "'A_B' does not exist" in result.output


# -- 6: the retry note is true; a connection closed is a connection error ---------------------------


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_retry_note_names_an_attempt_that_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against an unreachable endpoint: each note is made as an attempt starts, and names that attempt
    among all of them (8); no note after the last one."""
    events: list[str] = []
    monkeypatch.setattr(aws, "NOTICE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(aws, "notify", events.append)
    client = aws.make_client("s3", endpoint_url=f"http://127.0.0.1:{unused_port()}", region="us-east-1")
    client.meta.events.register("before-send", lambda **_: events.append("sent"))
    with pytest.raises(Exception, match="Could not connect"):
        client.list_buckets()
    assert events.count("sent") == aws.DEFAULT_MAX_ATTEMPTS
    notes = [event for event in events if event != "sent"]
    assert notes == [
        f"s3: retrying: attempt 2 of at most {aws.DEFAULT_MAX_ATTEMPTS} (the last one: Could not"
        f' connect to the endpoint URL: "{client.meta.endpoint_url}/")'
    ]
    assert events.index(notes[0]) < len(events) - 1 and events[events.index(notes[0]) + 1] == "sent"


def test_a_success_after_a_retry_is_not_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    notes: list[str] = []
    monkeypatch.setattr(aws, "NOTICE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(aws, "notify", notes.append)
    with mock_aws():
        client = aws.make_client("s3", region="us-east-1")
        client.list_buckets()
    assert notes == []


@pytest.fixture
def closing_server() -> Iterator[str]:
    """A server that accepts every connection and closes it at once."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


def test_a_connection_closed_by_the_server_is_a_connection_error(closing_server: str) -> None:
    result = invoke("tables", "--bucket", BUCKET, "--endpoint-url", closing_server)
    assert result.exit_code == 3, result.output
    assert "cannot connect to AWS" in result.output and "credentials" not in result.output


def test_every_command_help_lists_the_exit_codes_every_command_has() -> None:
    """Ctrl-C (130) and a closed stdout (141) end every command alike; each command's own --help says
    so, not only the group's (a fresh reader found them missing)."""
    from ddb_backup.cli import cli

    for name in sorted(cli.commands):
        result = invoke(name, "--help")
        text = " ".join(result.output.split())
        assert result.exit_code == 0 and "Exit codes:" in text, name
        assert "130 " in text and "141 stdout closed early" in text, (name, text[text.index("Exit codes:") :])
