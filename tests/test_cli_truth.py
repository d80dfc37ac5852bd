"""The command line tells the truth (issue 14): a wrong name is never a silent success, errors point the
right way, options are checked, every summary says which TIME it used."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from moto import mock_aws

from cli_support import AT, BUCKET, NOW, fill_bucket, invoke, tables_of
from ddb_backup.cli import cli


@pytest.fixture
def bucket() -> Iterator[Any]:
    """The shared command-line bucket (``cli_support.fill_bucket``); yields the DynamoDB client."""
    with mock_aws():
        yield fill_bucket()


# -- 14.1: nothing matches -> exit 5 before touching anything, with what the bucket holds ------------


def test_restore_with_a_wrong_prefix_creates_nothing_and_names_the_right_prefix(bucket: Any, tmp_path: Path) -> None:
    result = invoke(
        "restore", "--bucket", BUCKET, "--prefix", "prd", "--table", "orders", "--at", "-1s", "--to-table", "copy",
        "--checkpoint", str(tmp_path / "cp.json"),
    )  # fmt: skip
    assert result.exit_code == 5, result.output
    assert "holds nothing for the table 'orders'" in result.output and "'prod'" in result.output
    assert "copy" not in tables_of(bucket)


def test_restore_with_a_mistyped_tenant_or_a_tenant_on_a_table_without_tenants(bucket: Any, tmp_path: Path) -> None:
    common = ["restore", "--bucket", BUCKET, "--prefix", "prod", "--at", "-1s", "--to-table", "copy"]
    common += ["--checkpoint", str(tmp_path / "cp.json")]
    mistyped = invoke(*common, "--table", "teams", "--tenant", "acne")
    assert mistyped.exit_code == 5 and "did you mean --tenant 'acme'" in mistyped.output
    none = invoke(*common, "--table", "orders", "--tenant", "acme")
    assert none.exit_code == 5 and "has no tenants" in none.output
    assert "copy" not in tables_of(bucket)


def test_restore_with_a_key_not_in_the_backup_or_missing_its_range_part(bucket: Any, tmp_path: Path) -> None:
    common = ["restore", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--at", "-1s"]
    common += ["--to-table", "copy", "--checkpoint", str(tmp_path / "cp.json")]
    absent = invoke(*common, "--key", '{"pk":"p9","sk":9}')
    assert absent.exit_code == 5 and "holds no version of the item" in absent.output
    partial = invoke(*common, "--key", '{"pk":"p1"}')
    assert partial.exit_code == 2 and "lacks the range key 'sk'" in partial.output
    assert "copy" not in tables_of(bucket)


def test_restore_takes_the_plain_json_key_history_takes_and_prints_a_json_summary(bucket: Any, tmp_path: Path) -> None:
    result = invoke(
        "restore", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--at", "-1s", "--to-table", "copy",
        "--key", '{"pk":"p1","sk":1}', "--checkpoint", str(tmp_path / "cp.json"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["puts"] == 1 and summary["target"] == "copy" and summary["at"].endswith("Z")


@pytest.mark.parametrize("command", ["diff", "export", "history", "verify"])
def test_every_reader_refuses_a_mistyped_table_or_prefix(bucket: Any, tmp_path: Path, command: str) -> None:
    extra = {
        "diff": ["--from", "-1h"],
        "export": ["--at", "-1s", "--to", str(tmp_path / "out")],
        "history": ["--key", '{"pk":"p1","sk":1}'],
        "verify": [],
    }[command]
    mistyped = invoke(command, "--bucket", BUCKET, "--prefix", "prod", "--table", "ordres", *extra)
    assert mistyped.exit_code == 5 and "did you mean --table 'orders'" in mistyped.output, mistyped.output
    wrong_prefix = invoke(command, "--bucket", BUCKET, "--prefix", "staging", "--table", "orders", *extra)
    assert wrong_prefix.exit_code == 5 and "under --prefix 'prod'" in wrong_prefix.output, wrong_prefix.output
    assert not (tmp_path / "out").exists()


def test_tables_under_an_empty_prefix_names_the_top_level_folders(bucket: Any) -> None:
    result = invoke("tables", "--bucket", BUCKET, "--prefix", "nope")
    assert result.exit_code == 5 and "'prod'" in result.output


def test_a_missing_bucket_says_so(bucket: Any) -> None:
    result = invoke("tables", "--bucket", "no-such-bucket")
    assert result.exit_code == 5
    assert "the bucket 'no-such-bucket' does not exist" in result.output and "credentials" not in result.output


def test_bucket_and_prefix_default_to_the_functions_environment_names(bucket: Any) -> None:
    result = invoke("tables", "--json", env={"BackupBucket": BUCKET, "BackupPrefix": "prod"})
    assert result.exit_code == 0, result.output
    assert sorted(table["table"] for table in json.loads(result.stdout)["tables"]) == ["orders", "teams"]


# -- 14.2: no traceback for the reported inputs --------------------------------------------------------


def test_a_39_digit_key_number_is_a_one_line_error(bucket: Any) -> None:
    key_text = '{"pk":"p1","sk":' + "9" * 39 + "}"
    result = invoke("history", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--key", key_text)
    assert result.exit_code == 2 and "38 digits" in result.output
    assert isinstance(result.exception, SystemExit)  # a one-line error, not a traceback


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--table", "orders", "--read-rate", "-1"],
        ["verify", "--table", "orders", "--read-rate", "0"],
        ["verify", "--table", "orders", "--segments", "-3"],
        ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--total-segments", "0"],
        ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--write-rate", "0"],
        ["full-backup", "--table", "orders", "--segments", "0"],
    ],
)
def test_numeric_options_out_of_range_are_usage_errors(args: list[str]) -> None:
    result = invoke(*args, "--bucket", BUCKET)
    assert result.exit_code == 2 and "Invalid value" in result.output, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--table", "orders", "--read-rate", "nan"],
        ["verify", "--table", "orders", "--read-rate", "inf", "--grace", "0s"],
        ["verify", "--table", "orders", "--grace", "99999999999999d"],
        ["full-backup", "--table", "orders", "--read-rate", "nan"],
        ["full-backup", "--table", "orders", "--read-rate", "inf"],
        ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--write-rate", "nan", "--dry-run"],
        ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--max-lag", "99999999999999d"],
    ],
)
def test_nan_inf_and_huge_durations_are_one_line_errors_before_anything_runs(args: list[str]) -> None:
    """No bucket exists (no emulator either): the option is refused before any AWS call."""
    result = invoke(*args, "--bucket", BUCKET, "--prefix", "scratch", "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert sum(line.lower().startswith("error:") for line in result.output.splitlines()) == 1, result.output


def test_local_paths_of_the_wrong_kind_are_one_line_errors(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args in (
        ["export", "--table", "orders", "--at", "-1s", "--to", str(a_file)],
        ["export", "--table", "orders", "--at", "-1s", "--to", str(a_file / "below")],
        ["run", "--table", "orders", "--until-idle", "--checkpoint", str(tmp_path)],
        ["run", "--table", "orders", "--until-idle", "--checkpoint", str(a_file / "cp.json")],
    ):
        result = invoke(*args, "--bucket", BUCKET, "--endpoint-url", "http://127.0.0.1:9")
        assert result.exit_code == 2, (args, result.output)
        assert isinstance(result.exception, SystemExit), result.exception
        assert sum(line.lower().startswith("error:") for line in result.output.splitlines()) == 1, result.output
    assert a_file.read_text() == "x"


# -- 14.3: one time rule -----------------------------------------------------------------------------


def test_epoch_milliseconds_and_the_resolved_time_in_the_summary(bucket: Any, tmp_path: Path) -> None:
    millis = str(int(NOW * 1000))
    result = invoke(
        "restore", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--at", millis, "--to-table", "copy",
        "--checkpoint", str(tmp_path / "cp.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "TIME: 20" in result.output and "put: 3" in result.output


@pytest.mark.parametrize("command", ["diff", "export", "restore"])
def test_a_future_time_or_a_time_without_a_zone_is_refused_by_every_command(command: str, tmp_path: Path) -> None:
    option = {"diff": "--from", "export": "--at", "restore": "--at"}[command]
    extra = {"diff": [], "export": ["--to", str(tmp_path)], "restore": ["--to-table", "copy"]}[command]
    for when, message in [("2099-01-01T00:00:00Z", "in the future"), ("2026-01-01T00:00:00", "no time zone")]:
        result = invoke(command, "--bucket", BUCKET, "--table", "orders", option, when, *extra)
        assert result.exit_code == 2 and message in result.output, result.output


# -- 14.5: an unreachable endpoint is a connection error, from every command -------------------------


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [["tables"], ["verify", "--table", "orders"]])
def test_an_unreachable_endpoint_is_a_connection_error(command: list[str]) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    result = invoke(*command, "--bucket", BUCKET, "--endpoint-url", url)
    assert result.exit_code == 3, result.output
    assert "cannot connect to AWS" in result.output and "cannot describe" not in result.output


def test_an_invalid_bucket_name_is_a_user_error(bucket: Any) -> None:
    result = invoke("tables", "--bucket", "Bad_Bucket!")
    assert result.exit_code == 2 and "not a valid S3 bucket name" in result.output


# -- 14.8: no silent phases; labelled counts -------------------------------------------------------------


def test_verify_export_and_restore_show_labelled_progress(bucket: Any, tmp_path: Path) -> None:
    common = ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders"]
    exported = invoke("export", *common, "--at", "-1s", "--to", str(tmp_path / "export"))
    assert "export orders: 3 items written" in exported.stderr, exported.output
    verified = invoke("verify", *common, "--grace", "0s")
    assert "verify orders: 0 table items scanned" in verified.stderr, verified.output
    restored = invoke("restore", *common, "--at", "-1s", "--to-table", "copy", "--checkpoint", str(tmp_path / "c"))
    assert "restore: 3 items put, 3 looked at" in restored.stderr, restored.output


def test_shell_completion_as_the_readme_documents_it() -> None:
    script = CliRunner().invoke(cli, [], prog_name="ddb-backup", env={"_DDB_BACKUP_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "_ddb_backup_completion" in script.output
    words = {"COMP_WORDS": "ddb-backup res", "COMP_CWORD": "1", "_DDB_BACKUP_COMPLETE": "bash_complete"}
    completed = CliRunner().invoke(cli, [], prog_name="ddb-backup", env=words)
    assert "restore" in completed.output


def test_a_checkpoint_of_another_time_names_both_times_in_utc() -> None:
    from ddb_backup.restore.checkpoint import Query

    saved = Query("b", "", "orders", "copy", at=1795773600.0, max_lag=90000.0)
    now = Query("b", "", "orders", "copy", at=1795777200.5, max_lag=3600.0)
    assert now.differences(saved) == [
        "at 2026-11-27T10:00:00Z (checkpoint) vs 2026-11-27T11:00:00.500Z (now)",
        "max_lag 90000s (checkpoint) vs 3600s (now)",
    ]


def test_diff_at_times_before_the_first_backup_says_so(bucket: Any) -> None:
    common = ["diff", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders"]
    before = invoke(*common, "--from", str(int(AT - 7200)), "--to", str(int(AT - 3600)))
    assert before.exit_code == 5 and "before its first write" in before.output, before.output
    spanning = invoke(*common, "--from", str(int(AT - 3600)), "--to", "-0s")
    assert spanning.exit_code == 0 and "3 added" in spanning.output, spanning.output
