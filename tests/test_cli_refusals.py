"""The command line tells the truth (issue 14, the rest): what the bucket does not hold, a time before the
backup, options in the wrong order or of absurd size, names DynamoDB cannot hold, and output people and
scripts can read (times in ISO 8601, every count labelled)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from builders import put, remove
from cli_support import AT, BUCKET, SCHEMA, fill_bucket, invoke, key, one_line_error, tables_of
from ddb_backup.capture.engine import Capture, CaptureSettings
from ddb_backup.cli import cli
from ddb_backup.store.s3 import S3Store


@pytest.fixture
def bucket() -> Iterator[Any]:
    with mock_aws():
        yield fill_bucket()


# -- nothing matches: exit 5 and what the bucket does hold -----------------------------------------------


def test_tables_without_a_prefix_on_a_bucket_of_prefixes_exits_5_naming_them(bucket: Any) -> None:
    for args in (["--json"], []):
        result = invoke("tables", "--bucket", BUCKET, *args)
        assert one_line_error(result, 5), result.output
        assert "holds no tables at the bucket's top level" in result.output
        assert "--prefix prod" in result.output, result.output
        assert result.stdout == ""


def test_tables_without_a_prefix_shows_top_level_tables_and_names_the_prefixes_beside_them(bucket: Any) -> None:
    Capture(S3Store(boto3.client("s3"), BUCKET), CaptureSettings(), lambda table: SCHEMA).process(
        [put(key(1), table="top", at=AT)]
    )
    result = invoke("tables", "--bucket", BUCKET, "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert [table["table"] for table in shown["tables"]] == ["top"] and shown["prefixes"] == ["prod"]
    assert "'prod' is a prefix, not a table: `ddb-backup tables --prefix prod`" in result.stderr


# -- a time before the backup's first write: exit 5 from every reader that takes a time ------------------

BEFORE = str(int(AT - 3 * 86400))


def test_export_at_a_time_before_the_first_backup_exits_5_and_writes_nothing(bucket: Any, tmp_path: Path) -> None:
    target = tmp_path / "new"  # a new folder; the one above it exists (README, "Local files")
    common = ["export", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--to", str(target)]
    result = invoke(*common, "--at", BEFORE)
    assert one_line_error(result, 5), result.output  # a one-line error, not a traceback
    assert "before its first write" in result.output and not target.exists()


def test_export_of_no_items_after_the_first_backup_writes_an_empty_export(bucket: Any, tmp_path: Path) -> None:
    """Every item was deleted before TIME: an empty export is the truth (exit 0), into a new folder."""
    capture = Capture(S3Store(boto3.client("s3"), BUCKET), CaptureSettings(prefix="prod"), lambda table: SCHEMA)
    assert not capture.process([put(key(1), table="gone", at=AT - 60), remove(key(1), table="gone", at=AT)]).failures
    target = tmp_path / "new"  # a new folder; the one above it exists (README, "Local files")
    result = invoke(
        "export", "--bucket", BUCKET, "--prefix", "prod", "--table", "gone", "--at", "-1s", "--to", str(target)
    )
    assert result.exit_code == 0, result.output
    assert json.loads((target / "manifest.json").read_text())["item_count"] == 0


def test_restore_at_a_time_before_the_first_backup_exits_5_and_creates_nothing(bucket: Any, tmp_path: Path) -> None:
    result = invoke(
        "restore", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--at", BEFORE, "--to-table", "copy",
        "--checkpoint", str(tmp_path / "cp.json"),
    )  # fmt: skip
    assert one_line_error(result, 5), result.output
    assert "before its first write" in result.output and "copy" not in tables_of(bucket)


# -- options in the wrong order, names DynamoDB cannot hold, absurd sizes: exit 2 -------------------------


def test_diff_from_later_than_to_is_refused_not_swapped(bucket: Any) -> None:
    result = invoke("diff", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--from", "-1m", "--to", "-2h")
    assert one_line_error(result, 2), result.output
    assert "--from" in result.output and "later than --to" in result.output and "(Try: " in result.output


TABLE_OPTIONS = {
    "restore --table": ["restore", "--at", "-1s", "--to-table", "copy", "--table"],
    "restore --to-table": ["restore", "--at", "-1s", "--table", "orders", "--to-table"],
    "history": ["history", "--key", '{"pk":"p1","sk":1}', "--table"],
    "diff": ["diff", "--from", "-1h", "--table"],
    "export": ["export", "--at", "-1s", "--to", "/nonexistent/x", "--table"],
    "verify": ["verify", "--table"],
    "full-backup": ["full-backup", "--table"],
    "run": ["run", "--until-idle", "--table"],
}


@pytest.mark.parametrize("where", sorted(TABLE_OPTIONS))
@pytest.mark.parametrize("name", ["", "ab", "x" * 256, "bad name!", "orders/2", "ørders"])
def test_a_table_name_dynamodb_cannot_hold_is_a_usage_error(where: str, name: str) -> None:
    """Refused before any AWS call: the endpoint does not exist."""
    result = invoke(*TABLE_OPTIONS[where], name, "--bucket", BUCKET, "--endpoint-url", "http://127.0.0.1:9")
    assert one_line_error(result, 2), result.output
    assert "table name" in result.output and "3-255" in result.output, result.output


def test_the_longest_and_the_shortest_table_names_are_taken() -> None:
    from ddb_backup.cli.common import TABLE_NAME

    for name in ("abc", "a.b-c_9", "x" * 255):
        assert TABLE_NAME.convert(name, None, None) == name


COUNTS = [
    ["full-backup", "--table", "orders", "--segments"],
    ["full-backup", "--table", "orders", "--workers"],
    ["verify", "--table", "orders", "--segments"],
    ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--workers"],
    ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--total-segments"],
]


@pytest.mark.parametrize("args", COUNTS, ids=lambda args: f"{args[0]} {args[-1]}")
def test_thread_and_segment_counts_are_capped_and_the_cap_is_in_the_help(args: list[str]) -> None:
    result = invoke(*args, "1000000", "--bucket", BUCKET, "--endpoint-url", "http://127.0.0.1:9")
    assert one_line_error(result, 2) and "1000000 is not in the range" in result.output, result.output
    command: Any = cli.commands[args[0]]
    (option,) = [p for p in command.params if args[-1] in p.opts]
    assert option.type.max < 10_000 and f"<={option.type.max}" in command.get_help(command.context_class(command))


def test_a_segment_outside_the_total_is_a_usage_error() -> None:
    result = invoke(
        "restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--segment", "4", "--total-segments", "4",
        "--bucket", BUCKET, "--endpoint-url", "http://127.0.0.1:9",
    )  # fmt: skip
    assert one_line_error(result, 2) and "--segment" in result.output, result.output


# -- a missing destination bucket is said to be missing --------------------------------------------------


def test_export_to_a_missing_bucket_says_it_does_not_exist(bucket: Any) -> None:
    result = invoke(
        "export", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--at", "-1s",
        "--to", "s3://missing-bucket/exports/",
    )  # fmt: skip
    assert one_line_error(result, 5), result.output
    assert "the bucket 'missing-bucket' does not exist" in result.output and "credentials" not in result.output
    assert "--to" in result.output


def test_run_with_a_checkpoint_in_a_missing_bucket_says_it_does_not_exist(bucket: Any) -> None:
    bucket.update_table(
        TableName="orders", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    result = invoke(
        "run", "--bucket", BUCKET, "--table", "orders", "--until-idle", "--checkpoint", "s3://missing-bucket/cp.json"
    )
    assert one_line_error(result, 5), result.output
    assert "the bucket 'missing-bucket' does not exist" in result.output and "credentials" not in result.output


# -- output: times in ISO 8601, every count labelled --------------------------------------------------------


def epoch_numbers(data: Any, path: str = "") -> list[str]:
    """Where ``data`` (parsed JSON) holds a number that reads as epoch seconds or milliseconds (2001-2286)."""
    if isinstance(data, dict):
        return [found for name, value in data.items() for found in epoch_numbers(value, f"{path}.{name}")]
    if isinstance(data, list):
        return [found for index, value in enumerate(data) for found in epoch_numbers(value, f"{path}[{index}]")]
    is_number = isinstance(data, int | float) and not isinstance(data, bool)
    return [f"{path}={data}"] if is_number and (1e9 <= data < 1e10 or 1e12 <= data < 1e13) else []


def test_no_json_summary_holds_an_epoch_number(bucket: Any, tmp_path: Path) -> None:
    bucket.put_item(TableName="orders", Item={**key(1), "v": {"N": "1"}})
    common = ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--json"]
    runs = {
        "restore": ["restore", *common, "--at", "-1s", "--to-table", "copy", "--checkpoint", str(tmp_path / "cp")],
        "dry-run": ["restore", *common, "--at", "-1s", "--to-table", "copy2", "--dry-run"],
        "diff": ["diff", *common, "--from", str(int(AT - 60))],
        "export": ["export", *common, "--at", "-1s", "--to", str(tmp_path / "export")],
        "history": ["history", *common, "--key", '{"pk":"p1","sk":1}'],
        "verify": ["verify", *common, "--grace", "0s"],
        "tables": ["tables", "--bucket", BUCKET, "--prefix", "prod", "--json"],
        "full-backup": ["full-backup", *common[:2], "--prefix", "scratch", "--table", "orders", "--json"],
    }
    for name, args in runs.items():
        result = invoke(*args)
        assert result.exit_code in (0, 1), (name, result.output)
        summary = json.loads(result.stdout)
        assert epoch_numbers(summary) == [], (name, epoch_numbers(summary))
    restored = json.loads(invoke(*runs["restore"][:-2], "--to-table", "copy3", "--checkpoint", "c3").stdout)
    assert re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", restored["earliest"]), restored


PLAIN_PROGRESS = re.compile(r"(?P<label>[\w-]+(?: [\w.-]+)?): (?P<count>\d+)(?: of (about )?\d+)? (?P<unit>[a-z].*)")


def progress_lines(stderr: str, label: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{label}: ")]


def test_every_plain_progress_line_labels_its_counts(bucket: Any, tmp_path: Path) -> None:
    for n in range(5):
        bucket.put_item(TableName="orders", Item=key(n))
    common = ["--bucket", BUCKET, "--prefix", "prod", "--table", "orders"]
    runs = {
        "full-backup orders": ["full-backup", "--bucket", BUCKET, "--prefix", "scratch", "--table", "orders"],
        "export orders": ["export", *common, "--at", "-1s", "--to", str(tmp_path / "export")],
        "verify orders": ["verify", *common, "--grace", "0s"],
        "restore": ["restore", *common, "--at", "-1s", "--to-table", "copy", "--checkpoint", str(tmp_path / "cp")],
    }
    for label, args in runs.items():
        result = invoke(*args)
        lines = progress_lines(result.stderr, label)
        assert lines, (label, result.output)
        for line in lines:
            assert PLAIN_PROGRESS.fullmatch(line), line
            assert not re.search(r"\d+/\d+", line), line
            assert not re.search(r"[a-z] \d+(,|$)", line), line  # "written 5": the unit goes after the count


def test_a_bucket_found_missing_after_the_preflight_is_still_said_to_be_missing(
    bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted between the check and the write: the AWS error is read, not printed as "check credentials"."""
    from ddb_backup.cli import preflight

    monkeypatch.setattr(preflight, "check_s3_url", lambda *args: None)
    result = invoke(
        "export", "--bucket", BUCKET, "--prefix", "prod", "--table", "orders", "--at", "-1s",
        "--to", "s3://missing-bucket/exports/",
    )  # fmt: skip
    assert one_line_error(result, 5), result.output
    assert "the bucket 'missing-bucket' does not exist" in result.output and "credentials" not in result.output


@pytest.mark.parametrize("rate", ["1e-300", "0.5"])
@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--table", "orders", "--grace", "0s", "--read-rate"],
        ["full-backup", "--table", "orders", "--read-rate"],
        ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--write-rate"],
    ],
    ids=lambda args: args[0],
)
def test_a_rate_below_one_unit_a_second_is_a_usage_error(args: list[str], rate: str) -> None:
    """1e-300 units/s made a wait of 1e300 s, which time.sleep refuses with a traceback."""
    result = invoke(*args, rate, "--bucket", BUCKET, "--endpoint-url", "http://127.0.0.1:9")
    assert one_line_error(result, 2) and "at least 1" in result.output, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--checkpoint"],
        ["restore", "--table", "orders", "--at", "-1s", "--to-table", "copy", "--rejects"],
        ["export", "--table", "orders", "--at", "-1s", "--to"],
        ["run", "--table", "orders", "--until-idle", "--checkpoint"],
    ],
    ids=lambda args: f"{args[0]} {args[-1]}",
)
def test_a_local_path_with_a_nul_character_is_a_usage_error(args: list[str]) -> None:
    """Found by the fuzz test: Path.exists() raised ValueError (embedded null byte) from restore."""
    result = invoke(*args, "cp\x00.json", "--bucket", BUCKET, "--endpoint-url", "http://127.0.0.1:9")
    assert one_line_error(result, 2) and "NUL" in result.output, result.output


@pytest.mark.parametrize("prefix", ["a\x05b", "prod/../x", "p" * 600])
@pytest.mark.parametrize("command", ["tables", "export", "restore", "full-backup"])
def test_a_prefix_the_function_would_refuse_or_s3_cannot_list_is_a_usage_error(command: str, prefix: str) -> None:
    """Found by the fuzz test: a control character made every listing a 500, retried for 20 s."""
    extra = {
        "tables": [],
        "export": ["--table", "orders", "--at", "-1s", "--to", "/nonexistent/x"],
        "restore": ["--table", "orders", "--at", "-1s", "--to-table", "copy"],
        "full-backup": ["--table", "orders"],
    }[command]
    result = invoke(command, *extra, "--prefix", prefix, "--bucket", BUCKET, "--endpoint-url", "http://127.0.0.1:9")
    assert one_line_error(result, 2) and "--prefix" in result.output, result.output


@pytest.mark.parametrize("command", ["history", "diff", "restore"])
def test_a_tenant_with_a_control_character_is_looked_for_escaped_only(bucket: Any, command: str) -> None:
    """Found by the fuzz test: the raw folder the original tool would have written cannot be listed
    (S3's XML; moto answers 500), so a mistyped tenant was a 20 s retry and exit 3 instead of exit 5."""
    extra = {
        "history": ["--key", '{"pk":"p1","sk":1}'],
        "diff": ["--from", "-1h"],
        "restore": ["--at", "-1s", "--to-table", "copy", "--dry-run"],
    }[command]
    result = invoke(command, "--bucket", BUCKET, "--prefix", "prod", "--table", "teams", "--tenant", "a\x03b", *extra)
    assert one_line_error(result, 5) and "its tenants: 'acme', 'globex'" in result.output, result.output


def test_a_bucket_without_versioning_is_named_as_such(bucket: Any) -> None:
    boto3.client("s3").create_bucket(Bucket="plain")
    result = invoke("diff", "--bucket", "plain", "--prefix", "prod", "--table", "orders", "--from", "-1h")
    assert one_line_error(result, 5) and "has no versioning" in result.output, result.output


def test_a_tenant_whose_text_is_percent_none_is_not_offered_for_items_without_one(bucket: Any) -> None:
    """A fresh tester's finding: the text "%none" is stored under "%25none"; asking for --tenant %none
    (items without a tenant) where there are none suggested --tenant '%none' again."""
    store = S3Store(boto3.client("s3", region_name="us-east-1"), BUCKET)
    tenanted = Capture(store, CaptureSettings(prefix="prod", tenant_column="org"), lambda table: SCHEMA)
    assert not tenanted.process([put(key(7), {"org": {"S": "%none"}}, table="teams", at=AT)]).failures
    result = invoke("history", "--bucket", BUCKET, "--prefix", "prod", "--table", "teams", "--tenant", "%none",
                    "--key", '{"pk":"p7","sk":7}')  # fmt: skip
    assert one_line_error(result, 5), result.output
    assert "holds no items without a tenant (--tenant %none)" in result.output
    assert "its tenants: 'acme', 'globex', 'folder %25none'" in result.output
    assert "did you mean" not in result.output
