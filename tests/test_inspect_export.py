"""``export``: the state at T as DynamoDB JSON files that DynamoDB's "Import from S3" reads."""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from builders import put, remove
from ddb_backup.cli import cli
from ddb_backup.errors import UserError
from ddb_backup.inspect.export import (
    DirDestination,
    ExportManifest,
    ExportSettings,
    export_table,
    import_command,
    item_line,
    read_export,
)
from ddb_backup.restore.plan import PointInTime, table_ranges
from ddb_backup.restore.state import iter_states, read_image
from ddb_backup.store.s3 import S3Store
from hypothesis_profiles import scaled
from inspect_support import BUCKET, Clock, backed_up, memory_store, versioned_bucket

T0 = 1_764_000_000.0

values = st.one_of(
    st.builds(lambda n: {"N": str(n)}, st.integers(-1000, 1000)),
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda b: {"B": __import__("base64").b64encode(b).decode()}, st.binary(max_size=4)),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(min_size=1, max_size=3), min_size=1, max_size=3)),
    st.just({"BOOL": True}),
)
changes = st.lists(
    st.tuples(
        st.sampled_from("abcde"),
        st.booleans(),  # False: remove
        st.dictionaries(st.sampled_from(["x", "y", "z"]), values, max_size=3),
        st.floats(0.5, 100),  # seconds after the previous change
    ),
    min_size=1,
    max_size=15,
)


def state_at(store: Any, at: float) -> list[dict[str, Any]]:
    """What a restore at ``at`` would write: the reader's items."""
    ranges = table_ranges(store, "", "orders")
    states = [s for _, s in iter_states(store, ranges, PointInTime(at=at)) if s is not None and s.present]
    return [image for image in (read_image(store, s) for s in states) if image is not None]


def canonical(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


@settings(max_examples=scaled(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes, st.floats(0, 1), st.sampled_from(["none", "gzip", "zstd"]))
def test_export_lines_parse_back_into_the_items_a_restore_at_t_would_write(
    history: list[tuple[str, bool, dict[str, Any], float]], where: float, compression: str
) -> None:
    # GIVEN a backup of random changes
    clock = Clock()
    store = memory_store(clock)
    records, at = [], T0
    for name, present, attrs, gap in history:
        at += gap
        key = {"pk": {"S": name}}
        records.append(put(key, attrs, at=at) if present else remove(key, at=at))
    backed_up(store, records, clock=clock)
    t = T0 + where * (at - T0 + 10)
    # WHEN the state at some time T is exported, two items per file
    with tempfile.TemporaryDirectory() as folder:
        manifest = ExportManifest("orders", t, compression)
        export_table(
            store,
            table_ranges(store, "", "orders"),
            PointInTime(at=t),
            DirDestination(Path(folder)),
            manifest,
            ExportSettings(compression=compression, items_per_file=2),
        )
        exported = read_export(Path(folder))
        written = json.loads((Path(folder) / "manifest.json").read_text())
    # THEN its lines are exactly the restore's items, and the manifest counts them
    assert canonical(exported) == canonical(state_at(store, t))
    assert written["item_count"] == len(exported) == sum(f["items"] for f in written["files"])
    assert all(f["items"] <= 2 for f in written["files"])


def test_files_are_checksummed_and_an_export_is_never_mixed_with_another(tmp_path: Path) -> None:
    clock = Clock()
    store = memory_store(clock)
    backed_up(store, [put({"pk": {"S": str(n)}}, {"v": {"N": str(n)}}, at=T0 + n) for n in range(5)], clock=clock)
    manifest = ExportManifest("orders", T0 + 100, "gzip")
    ranges = table_ranges(store, "", "orders")
    export_table(store, ranges, PointInTime(at=T0 + 100), DirDestination(tmp_path), manifest)
    files = json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert [f["name"] for f in files] == ["data/00000.json.gz"]
    raw = (tmp_path / "data/00000.json.gz").read_bytes()
    assert files[0]["sha256"] == hashlib.sha256(raw).hexdigest() and files[0]["bytes"] == len(raw)
    lines = gzip.decompress(raw).decode().splitlines()
    assert len(lines) == 5 and all(set(json.loads(line)) == {"Item"} for line in lines)
    with pytest.raises(UserError, match="already holds an export"):
        export_table(store, ranges, PointInTime(at=T0 + 100), DirDestination(tmp_path), manifest)


def test_the_import_command_names_the_data_prefix_and_the_key_schema() -> None:
    table = {
        "TableName": "orders",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
    }
    command = import_command("s3://exports/run-1/", "zstd", table)
    assert "--s3-bucket-source S3Bucket=exports,S3KeyPrefix=run-1/data/" in command
    assert "--input-format DYNAMODB_JSON --input-compression-type ZSTD" in command
    assert '"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}]' in command


@mock_aws
def test_export_command_writes_to_s3() -> None:
    # GIVEN a backup on S3 of changes a while ago
    s3 = versioned_bucket()
    s3.create_bucket(Bucket="exports")
    now = time.time()
    records = [put({"pk": {"S": str(n)}}, {"v": {"N": str(n)}}, at=now - 100 + n) for n in range(3)]
    backed_up(S3Store(s3, BUCKET), [*records, remove({"pk": {"S": "0"}}, at=now - 50)], plain_text=True)
    # WHEN the state before the removal is exported to S3 as zstd
    args = ["export", "--bucket", BUCKET, "--table", "orders", "--at", str(now - 60), "--to", "s3://exports/x"]
    result = CliRunner().invoke(cli, [*args, "--compress", "zstd", "--json"])
    # THEN three items in one file, a manifest, and the import call
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # progress goes to stderr
    assert data["item_count"] == 3 and data["input_compression_type"] == "ZSTD"
    assert "S3KeyPrefix=x/data/" in data["import_command"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="exports")["Contents"]]
    assert keys == ["x/data/00000.json.zst", "x/manifest.json"]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "not empty" in again.output


def test_a_line_separator_inside_a_value_does_not_split_the_item() -> None:
    # found by the property above: U+0085 in a string split the line for a unicode-aware reader
    line = item_line({"pk": {"S": "a\u2028b\x85c"}})
    assert len(line.decode().splitlines()) == 1
    assert json.loads(line)["Item"]["pk"]["S"] == "a\u2028b\x85c"
