"""``ddb-backup restore`` end to end against moto's server: sync, key checks, rejects, prompts, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ddb_backup.aws.clients import make_client
from ddb_backup.cli import cli
from ddb_backup.cli import restore as restore_cli
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.lab.emulator import reset
from test_e2e_restore import backed_up_items, scan_all, source_table

pytestmark = pytest.mark.e2e

BACKUP = ["--bucket", "bk-restore", "--table", "orders"]


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    reset(moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.chdir(tmp_path)  # checkpoints and rejects files land here
    return moto_url


def cli_restore(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(cli, ["restore", *BACKUP, *args], input=stdin, catch_exceptions=False)


def pks(ddb: Any, table: str) -> list[str]:
    return [item["pk"]["S"] for item in scan_all(ddb, table)]


# -- 11.1 -------------------------------------------------------------------------------------------------


def test_overwrite_sync_of_the_source_table_onto_itself_keeps_every_item(moto: str) -> None:
    # GIVEN 35 items backed up (and 4 removed), the live source holding them plus one added since
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    backed_up_items(s3, 39, time.time() - 100)
    source_table(ddb)
    now = epoch_to_iso(time.time())
    assert cli_restore("--at", now, "--to-table", "copy").exit_code == 0
    ddb.put_item(TableName="orders", Item={"pk": {"S": "later"}, "sk": {"N": "1"}})
    for item in scan_all(ddb, "copy"):
        ddb.put_item(TableName="orders", Item={**item, "v": {"N": "-1"}})
    # WHEN the source is restored onto itself with --overwrite --sync, and a copy is synced too
    same = cli_restore("--at", now, "--to-table", "orders", "--allow-same-table", "--overwrite", "--sync", "--yes")
    copy = cli_restore("--at", now, "--to-table", "copy", "--overwrite", "--sync", "--yes")
    # THEN both hold exactly the 35 items present at TIME, with their images at TIME
    assert same.exit_code == 0, same.output
    assert copy.exit_code == 0, copy.output
    assert "put: 35" in same.output and "deleted: 1" in same.output
    assert "put: 35" in copy.output and "deleted: 0" in copy.output
    assert scan_all(ddb, "orders") == scan_all(ddb, "copy")
    assert len(scan_all(ddb, "orders")) == 35 and all(i["v"]["N"] != "-1" for i in scan_all(ddb, "orders"))


# -- 11.4 -------------------------------------------------------------------------------------------------


def test_a_target_keyed_only_on_pk_is_refused_when_the_source_is_gone(moto: str) -> None:
    # GIVEN a backup of a table keyed pk + sk (no saved schema, the source table deleted), and a
    # target keyed on pk alone
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    backed_up_items(s3, 5, time.time() - 100)
    ddb.create_table(
        TableName="copy",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # WHEN it is restored into it
    result = cli_restore("--at", epoch_to_iso(time.time()), "--to-table", "copy", "--overwrite", "--yes")
    # THEN exit 2 with one line naming both keys, and nothing written
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "keyed pk (S, hash)" in result.output and "sk (N)" in result.output
    assert scan_all_count(ddb, "copy") == 0


def scan_all_count(ddb: Any, table: str) -> int:
    return int(ddb.scan(TableName=table, Select="COUNT")["Count"])


# -- 11.5 -------------------------------------------------------------------------------------------------


def test_an_item_the_targets_index_refuses_goes_to_the_rejects_file_with_exit_4(moto: str) -> None:
    # GIVEN a table with a GSI on email, whose backup holds one item with an empty email (written
    # before the index existed), all other items fine
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    store = backed_up_items(s3, 30, time.time() - 100)
    image_key = next(v.key for v in store.list_versions("orders/") if not v.is_delete_marker)
    current = json.loads(store.get(image_key).body)
    store.put(image_key, json.dumps({**current, "email": {"S": ""}}).encode(), store.head(image_key).metadata)
    ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "email", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-email",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    # WHEN it is restored into a new table (created with the index), then resumed for good measure
    result = cli_restore("--at", epoch_to_iso(time.time()), "--to-table", "copy")
    # THEN every other item is restored, exit 4 with one line pointing at the rejects file
    assert result.exit_code == 4, result.output
    assert len(scan_all(ddb, "copy")) == 26  # 27 present at TIME, one refused
    assert "refused 1 item(s)" in result.output and "ddb-backup-restore-copy.rejects.jsonl" in result.output
    rejects = Path("ddb-backup-restore-copy.rejects.jsonl")
    (line,) = [json.loads(text) for text in rejects.read_text().splitlines()]
    assert line["Item"]["email"] == {"S": ""} and "IndexKey: email" in line["reason"]
    assert oct(rejects.stat().st_mode & 0o777) == "0o600"
    assert not Path("ddb-backup-restore-copy.json").exists()


# -- 11.7 -------------------------------------------------------------------------------------------------


def test_destructive_modes_refuse_without_a_terminal_unless_yes(moto: str) -> None:
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    backed_up_items(s3, 10, time.time() - 100)
    source_table(ddb)
    ddb.put_item(TableName="orders", Item={"pk": {"S": "later"}, "sk": {"N": "1"}})
    now = epoch_to_iso(time.time())
    for flags in (["--overwrite"], ["--overwrite", "--sync"]):
        result = cli_restore("--at", now, "--to-table", "orders", "--allow-same-table", *flags)
        assert result.exit_code == 2, result.output
        assert "no terminal to ask" in result.output and "--yes" in result.output
    assert pks(ddb, "orders") == ["later"]
    assert not list(Path().glob("ddb-backup-restore-*"))


def test_on_a_terminal_a_destructive_restore_shows_the_plan_and_asks(
    moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a terminal, a backup of 9 items present at TIME and a target holding one other item
    monkeypatch.setattr(restore_cli, "stdin_is_terminal", lambda: True)
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    backed_up_items(s3, 10, time.time() - 100)
    source_table(ddb)
    source_table(ddb, "copy")
    ddb.put_item(TableName="copy", Item={"pk": {"S": "stranger"}, "sk": {"N": "1"}})
    at = time.time()
    args = ["--at", epoch_to_iso(at), "--to-table", "copy", "--overwrite", "--sync"]
    # WHEN the user answers no, THEN nothing is written (exit 1) after seeing target, TIME and counts
    declined = cli_restore(*args, stdin="n\n")
    assert declined.exit_code == 1, declined.output
    assert "restore into table 'copy' (--overwrite, --sync)" in declined.output
    assert f"TIME: {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(at))} UTC" in declined.output
    assert " local" in declined.output and "items to put: 9, delete 1" in declined.output
    assert pks(ddb, "copy") == ["stranger"]
    # WHEN the user answers yes, THEN the restore runs
    accepted = cli_restore(*args, stdin="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert len(pks(ddb, "copy")) == 9 and "stranger" not in pks(ddb, "copy")


# -- 11.6 -------------------------------------------------------------------------------------------------


def start_restore(moto: str, *args: str) -> subprocess.Popen[str]:
    code = "from ddb_backup.cli import main; main()"
    env = {**os.environ, "AWS_ENDPOINT_URL": moto, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", code, "restore", *BACKUP, *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_writes(process: subprocess.Popen[str]) -> list[str]:
    """stderr lines until the progress line says some items are written (no clock involved)."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        match = re.match(r"restore: (\d+)", line)
        if match and int(match.group(1)) > 0:
            return seen
    raise AssertionError(f"the restore ended before writing: {''.join(seen)}")


@pytest.mark.parametrize(
    ("presses", "at_before_writes"),
    [(1, False), (2, False), (1, True)],
    ids=["one-press", "two-presses", "time-before-the-s3-writes"],
)
def test_ctrl_c_stops_writing_and_resume_finishes_exactly(
    moto: str, tmp_path: Path, presses: int, at_before_writes: bool
) -> None:
    # GIVEN 200 items backed up (180 present at TIME) and a restore slowed to 10 writes a second. TIME
    # is now, or between the changes' event times and their (later) S3 writes, as when a restore's TIME
    # is close to the start of the backup: the resume must not take the partly restored table for a
    # table of someone else's (a tester's resume was refused with "table is not empty").
    ddb, s3 = make_client("dynamodb"), make_client("s3")
    backed_up_items(s3, 200, time.time() - 100)
    source_table(ddb)
    at = time.time() - (50 if at_before_writes else 0)
    args = ["--at", epoch_to_iso(at), "--to-table", "copy", "--checkpoint", str(tmp_path / "cp.json")]
    process = start_restore(moto, *args, "--write-rate", "10", "--workers", "4")
    # WHEN Ctrl-C is pressed once some items are written (twice: the second after the first is taken)
    wait_for_writes(process)
    process.send_signal(signal.SIGINT)
    if presses == 2:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("stopping"):
                break
        process.send_signal(signal.SIGINT)
    out, rest = process.communicate(timeout=120)
    # THEN it ends with 130 and a --resume hint, long before all 180 items are written. A second press
    # aborts, unless a loaded machine finished the clean stop before it arrived (the abort itself is
    # proven in-process by test_a_second_ctrl_c_aborts_at_once_even_while_the_stop_is_ending).
    assert process.returncode == 130, out + rest
    assert "--resume" in rest and "Traceback" not in rest, rest
    if presses == 1:
        assert "aborted" not in rest
    assert len(scan_all(ddb, "copy")) < 180
    # WHEN the same command runs again with --resume, THEN the table is exactly the state at TIME
    resumed = CliRunner().invoke(cli, ["restore", *BACKUP, *args, "--resume"], catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert "warning" not in resumed.output
    assert sorted(pks(ddb, "copy")) == sorted(f"item{n:03d}" for n in range(200) if n % 10)
    assert not (tmp_path / "cp.json").exists()


def test_a_second_ctrl_c_aborts_at_once_even_while_the_stop_is_ending(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a restore's Ctrl-C handling, with the process exit recorded instead of taken
    exits: list[int] = []
    monkeypatch.setattr(restore_cli.os, "_exit", exits.append)
    stop = restore_cli.threading.Event()
    # WHEN Ctrl-C is pressed once inside the restore, THEN the stop is asked for and nothing exits
    with restore_cli._ctrl_c_stops(stop):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.is_set() and exits == []
    # WHEN it is pressed again after the restore returned (its summary still being written),
    # THEN the process aborts with 130 rather than raising KeyboardInterrupt in a shutting-down thread
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    assert exits == [130]
    signal.signal(signal.SIGINT, signal.default_int_handler)
