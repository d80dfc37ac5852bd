"""Files holding table data are created readable by their owner only (mode 0600), whatever the umask
(issue 15.5): an export's data files and manifest, their parts while being written, and the rejects
file of a restore."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from builders import put
from ddb_backup.inspect.export import DirDestination, ExportManifest, export_table
from ddb_backup.restore.plan import PointInTime, table_ranges
from ddb_backup.restore.rejects import RejectsFile
from inspect_support import Clock, backed_up, memory_store

T0 = 1_764_000_000.0


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files readable by everyone (0644)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_an_exports_files_are_private(tmp_path: Path, open_umask: None) -> None:
    # GIVEN a backup of five items, and the modes of the parts as they are created
    clock = Clock()
    store = memory_store(clock)
    backed_up(store, [put({"pk": {"S": f"a{n}@example.com"}}, at=T0 + n) for n in range(5)], clock=clock)
    destination = DirDestination(tmp_path / "export")
    part_modes: list[str] = []
    publish = destination.publish

    def publish_and_look(name: str, path: Path) -> None:
        part_modes.append(mode(path))
        publish(name, path)

    destination.publish = publish_and_look  # type: ignore[method-assign]
    # WHEN it is exported to a folder
    ranges = table_ranges(store, "", "orders")
    export_table(store, ranges, PointInTime(at=T0 + 100), destination, ExportManifest("orders", T0 + 100, "gzip"))
    # THEN every file, and every part before it was published, is 0600
    files = [path for path in (tmp_path / "export").rglob("*") if path.is_file()]
    assert {path.name for path in files} == {"manifest.json", "00000.json.gz"}
    assert {path.name: mode(path) for path in files} == {path.name: "0o600" for path in files}
    assert part_modes == ["0o600"]


def test_a_restores_rejects_file_is_private(tmp_path: Path, open_umask: None) -> None:
    rejects = RejectsFile(tmp_path / "orders.rejects.jsonl", at=T0)
    rejects.add("put", {"pk": {"S": "a@example.com"}}, "ValidationException")
    rejects.close()
    assert mode(tmp_path / "orders.rejects.jsonl") == "0o600"
