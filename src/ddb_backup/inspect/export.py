"""The table's state at T in the format DynamoDB's "Import from S3" reads (DYNAMODB_JSON).

One JSON object ``{"Item": {...}}`` per line, the image as captured (binary values base64 text, as in
DynamoDB's own JSON export), in ``data/NNNNN.json[.gz|.zst]`` files of at most ``items_per_file``
items and about ``bytes_per_file`` bytes before compression, so the import reads them in parallel
and stays within its 50,000-object limit; then ``manifest.json`` (written last) with counts and
checksums. The destination is a local folder or ``s3://bucket/prefix``; it must hold no export yet.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import zstandard

from ddb_backup.errors import UserError
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.inspect.images import map_bounded
from ddb_backup.inspect.import_call import import_call
from ddb_backup.restore.plan import PointInTime
from ddb_backup.restore.ranges import KeyRange
from ddb_backup.restore.resolve import TAKE, Resolution, Resolver, resolver_for
from ddb_backup.restore.state import DEFAULT_LIST_WORKERS, iter_states
from ddb_backup.restore.timeline import ItemState
from ddb_backup.store import ObjectStore

FILE_MODE = 0o600  # the files hold table data: readable by their owner only, whatever the umask
MAX_IMPORT_FILES = 50_000  # DynamoDB import reads at most this many S3 objects
DEFAULT_ITEMS_PER_FILE = 100_000
DEFAULT_BYTES_PER_FILE = 100 * 1024 * 1024
DATA = "data/"
MANIFEST = "manifest.json"
# --compress -> (file suffix, DynamoDB's InputCompressionType)
COMPRESSIONS = {"none": ("", "NONE"), "gzip": (".gz", "GZIP"), "zstd": (".zst", "ZSTD")}


class Destination(Protocol):
    """Where an export goes: a part is written to a local path first, then published."""

    def check_empty(self) -> None: ...

    def part_path(self, name: str) -> Path: ...

    def publish(self, name: str, path: Path) -> None: ...

    def write_text(self, name: str, text: str) -> None: ...

    def describe(self, name: str) -> str: ...


class DirDestination:
    def __init__(self, root: Path) -> None:
        self.root = root

    def check_empty(self) -> None:
        if (self.root / MANIFEST).exists() or any((self.root / DATA).glob("*")):
            raise UserError(
                f"{self.root} already holds an export", "choose an empty folder (an import reads every file)"
            )

    def part_path(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(path.name + ".partial")

    def publish(self, name: str, path: Path) -> None:
        path.replace(self.root / name)

    def write_text(self, name: str, text: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)  # an export of no items has written no part first
        with create_private(self.root / name) as out:
            out.write(text.encode("utf-8"))

    def describe(self, name: str) -> str:
        return str(self.root / name)


class S3Destination:
    """``s3://bucket/prefix``: parts staged in a temporary folder, uploaded (multipart when large)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._staging = Path(tempfile.mkdtemp(prefix="ddb-backup-export-"))

    def check_empty(self) -> None:
        answer = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        if answer.get("KeyCount", 0):
            raise UserError(
                f"s3://{self.bucket}/{self.prefix} is not empty", "choose an empty prefix (an import reads every file)"
            )

    def part_path(self, name: str) -> Path:
        return self._staging / name.replace("/", "_")

    def publish(self, name: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self.prefix + name)
        path.unlink()

    def write_text(self, name: str, text: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=text.encode("utf-8"))
        shutil.rmtree(self._staging, ignore_errors=True)

    def describe(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"


def parse_destination(text: str, s3_client: Any = None) -> Destination:
    """``s3://bucket/prefix`` or a local folder."""
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise UserError(f"--to {text!r} names no bucket", "write it as s3://BUCKET/PREFIX")
        return S3Destination(s3_client, bucket, prefix)
    return DirDestination(Path(text))


@dataclass(frozen=True)
class PartInfo:
    name: str
    items: int
    bytes: int
    sha256: str
    md5: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Hashing:
    """A write-only file that counts and hashes what goes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256, self.md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def create_private(path: Path) -> BinaryIO:
    """``path`` created (or emptied) for writing with mode 0600."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)  # an existing file keeps its mode through O_CREAT
    return os.fdopen(descriptor, "wb")


class PartWriter:
    """One data file: lines in, compressed bytes out, counted and hashed."""

    def __init__(self, name: str, path: Path, compression: str) -> None:
        self.name, self.path = name, path
        self._raw = create_private(path)
        self._hashing = _Hashing(self._raw)
        self._stream: Any
        if compression == "gzip":
            self._stream = gzip.GzipFile(fileobj=self._hashing, mode="wb", mtime=0)
        elif compression == "zstd":
            self._stream = zstandard.ZstdCompressor().stream_writer(self._hashing, closefd=False)  # type: ignore[arg-type]
        else:
            self._stream = self._hashing
        self.items = 0
        self.uncompressed = 0

    def write(self, line: bytes) -> None:
        self._stream.write(line)
        self.items += 1
        self.uncompressed += len(line)

    def close(self) -> PartInfo:
        if self._stream is not self._hashing:
            self._stream.close()
        self._raw.close()
        return PartInfo(
            self.name, self.items, self._hashing.size, self._hashing.sha256.hexdigest(), self._hashing.md5.hexdigest()
        )


def item_line(image: dict[str, Any]) -> bytes:
    """One line of DynamoDB JSON import: ``{"Item": {...}}``. ASCII only: a reader that also breaks lines
    at U+0085 or U+2028 (Python's ``splitlines`` does) must not split an item."""
    return (json.dumps({"Item": image}, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


@dataclass
class ExportSettings:
    compression: str = "gzip"
    items_per_file: int = DEFAULT_ITEMS_PER_FILE
    bytes_per_file: int = DEFAULT_BYTES_PER_FILE
    list_workers: int = DEFAULT_LIST_WORKERS
    read_workers: int = 16


@dataclass
class ExportManifest:
    table: str
    at: float
    compression: str
    parts: list[PartInfo] = field(default_factory=list)
    legacy_items: int = 0
    source: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, Any] = field(default_factory=dict)  # objects that are not this table's items, by reason
    import_table: dict[str, Any] | None = None  # the ImportTable request (``import_call``)

    @property
    def item_count(self) -> int:
        return sum(part.items for part in self.parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": "ddb-backup-export/1",
            "table": self.table,
            "at": epoch_to_iso(self.at),
            "source": self.source,
            "input_format": "DYNAMODB_JSON",
            "input_compression_type": COMPRESSIONS[self.compression][1],
            "data_prefix": DATA,
            "item_count": self.item_count,
            "file_count": len(self.parts),
            "legacy_items": self.legacy_items,
            "skipped": self.skipped,
            "files": [part.as_dict() for part in self.parts],
            "created_at": epoch_to_iso(round(time.time())),
            "import_table": self.import_table,
        }


class _Parts:
    """Rolls data files over by item count and size; refuses to pass the import's file limit."""

    def __init__(self, destination: Destination, settings: ExportSettings, manifest: ExportManifest) -> None:
        self.destination, self.settings, self.manifest = destination, settings, manifest
        self.current: PartWriter | None = None

    def write(self, line: bytes) -> None:
        current = self.current
        if current is None or self._full(current):
            current = self._next()
        current.write(line)

    def _full(self, part: PartWriter) -> bool:
        return part.items >= self.settings.items_per_file or part.uncompressed >= self.settings.bytes_per_file

    def _next(self) -> PartWriter:
        self.finish()
        number = len(self.manifest.parts)
        if number >= MAX_IMPORT_FILES:
            raise UserError(
                f"the export needs more than {MAX_IMPORT_FILES} files, the most DynamoDB import reads",
                f"raise --items-per-file (now {self.settings.items_per_file})",
            )
        name = f"{DATA}{number:05d}.json{COMPRESSIONS[self.settings.compression][0]}"
        self.current = PartWriter(name, self.destination.part_path(name), self.settings.compression)
        return self.current

    def finish(self) -> None:
        if self.current is not None:
            info = self.current.close()
            self.destination.publish(info.name, self.current.path)
            self.manifest.parts.append(info)
            self.current = None


def _present_items(states: Iterable[tuple[KeyRange, ItemState | None]], resolver: Resolver) -> Iterator[ItemState]:
    """The items present at T; an absent object at a name no writer gives is reported as an empty stray."""
    for _, state in states:
        if state is not None and state.present:
            yield state
        elif state is not None:
            resolver.note_absent(state)


def export_table(
    store: ObjectStore,
    ranges: Sequence[KeyRange],
    when: PointInTime,
    destination: Destination,
    manifest: ExportManifest,
    settings: ExportSettings | None = None,
    resolver: Resolver | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_empty: Callable[[], None] | None = None,
) -> ExportManifest:
    """Write every item present at ``when`` to ``destination``; the manifest goes last. Each present
    object is read and resolved (``restore.resolve``): stray objects are skipped and counted in the
    manifest, an item held under several names is written once. ``on_progress(items written so far)``
    after each item (the caller throttles what it shows). ``on_empty()`` when no item was present, before
    anything is written: it may raise to refuse an empty export (the command line does when TIME precedes
    the backup)."""
    settings = settings or ExportSettings(compression=manifest.compression)
    if settings.compression not in COMPRESSIONS:
        raise UserError(f"unknown compression {settings.compression!r}", f"use one of {', '.join(COMPRESSIONS)}")
    destination.check_empty()
    parts = _Parts(destination, settings, manifest)
    states = iter_states(store, ranges, when, workers=settings.list_workers)
    if resolver is None:
        resolver = resolver_for(store, manifest.source.get("prefix", ""), manifest.table)

    present = _present_items(states, resolver)

    def read(state: ItemState) -> Resolution:
        return resolver.resolve(state, when.at, max_lag=when.max_lag)

    written = 0
    for state, resolution in map_bounded(read, present, workers=settings.read_workers):
        if resolution.kind == TAKE and resolution.image is not None:
            parts.write(item_line(resolution.image))
            manifest.legacy_items += state.legacy or resolution.legacy
            written += 1
            if on_progress is not None:
                on_progress(written)
    if written == 0 and on_empty is not None:
        on_empty()
    parts.finish()
    manifest.skipped = resolver.skips.as_dict()
    destination.write_text(MANIFEST, json.dumps(manifest.as_dict(), indent=2) + "\n")
    return manifest


def read_export(root: Path) -> list[dict[str, Any]]:
    """Every item of a local export (tests, and checking an export by hand)."""
    items: list[dict[str, Any]] = []
    if not (root / DATA).is_dir():
        return items  # nothing was present at T
    for path in sorted((root / DATA).iterdir()):
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        elif path.suffix == ".zst":
            raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        items += [json.loads(line)["Item"] for line in raw.decode("utf-8").split("\n") if line]
    return items


def import_command(destination: str, compression: str, table: dict[str, Any] | None) -> str:
    """The ``aws dynamodb import-table`` call that loads the export into a new table (``import_call``)."""
    return import_call(destination, COMPRESSIONS[compression][1], table).command
