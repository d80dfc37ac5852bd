"""Where the stream runner remembers how far it got: a local file or an S3 object (``StreamProgress``
keeps it while the runner runs).

A checkpoint holds, for one stream, the last acknowledged sequence number of each shard and the
shards read to their end. Local files are replaced atomically (a temporary file, then a rename),
so a crash leaves the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from ddb_backup.capture.stream_shards import Gap
from ddb_backup.errors import UserError
from ddb_backup.format.keys import prefix_parts
from ddb_backup.format.table_schema import OWN_FOLDER

CHECKPOINT_FORMAT = 1
S3_SCHEME = "s3://"


@dataclass
class Checkpoint:
    stream_arn: str
    positions: dict[str, str] = field(default_factory=dict)  # shard id -> last acknowledged sequence number
    finished: set[str] = field(default_factory=set)  # shards read to their end

    def to_json(self) -> bytes:
        data = {
            "format": CHECKPOINT_FORMAT,
            "stream_arn": self.stream_arn,
            "positions": dict(sorted(self.positions.items())),
            "finished": sorted(self.finished),
        }
        return json.dumps(data, indent=1).encode("utf-8")

    @classmethod
    def from_json(cls, text: bytes | str, location: str) -> Checkpoint:
        try:
            data = json.loads(text)
            return cls(str(data["stream_arn"]), dict(data["positions"]), set(data["finished"]))
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(
                f"checkpoint {location} cannot be read ({err})",
                hint="fix or delete it; without it the runner starts from the oldest records of the stream",
            ) from err


class CheckpointStore(Protocol):
    location: str

    def load(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...


class FileCheckpoints:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)

    def load(self) -> Checkpoint | None:
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return Checkpoint.from_json(text, self.location)

    def save(self, checkpoint: Checkpoint) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
            with os.fdopen(handle, "wb") as out:
                out.write(checkpoint.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except OSError as err:
            raise UserError(
                f"cannot write checkpoint {self.location}: {err}", hint="use a writable --checkpoint"
            ) from err


class S3Checkpoints:
    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.location = f"{S3_SCHEME}{bucket}/{key}"

    def load(self) -> Checkpoint | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return Checkpoint.from_json(answer["Body"].read(), self.location)

    def save(self, checkpoint: Checkpoint) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.key, Body=checkpoint.to_json(), ContentType="application/json"
        )


def default_location(bucket: str, prefix: str, table: str) -> str:
    """``s3://B/[prefix/]~ddb-backup/checkpoints/<table>.json``: next to the backup, outside item folders."""
    return S3_SCHEME + "/".join([bucket, *prefix_parts(prefix), OWN_FOLDER, "checkpoints", f"{table}.json"])


def open_checkpoints(location: str, s3_client: Callable[[], Any]) -> CheckpointStore:
    """A path, or ``s3://bucket/key``."""
    if not location.startswith(S3_SCHEME):
        return FileCheckpoints(location)
    bucket, _, key = location[len(S3_SCHEME) :].partition("/")
    if not bucket or not key:
        raise UserError(f"checkpoint {location!r} is not s3://BUCKET/KEY", hint="e.g. s3://my-backups/runner.json")
    return S3Checkpoints(s3_client(), bucket, key)


class StreamProgress:
    """How far the runner got on one stream (a ``Checkpoint``), saved to its ``CheckpointStore`` after
    every change: each shard's last acknowledged record, the shards read to their end."""

    def __init__(self, store: CheckpointStore, stream_arn: str, notify: Callable[[str], None]) -> None:
        self.store = store
        self.stream_arn = stream_arn
        self.notify = notify
        self.checkpoint = Checkpoint(stream_arn)

    @property
    def finished(self) -> set[str]:
        return self.checkpoint.finished

    def position(self, shard_id: str) -> str | None:
        return self.checkpoint.positions.get(shard_id)

    def load(self) -> None:
        """The saved checkpoint, unless it is for another stream (the table's stream was replaced)."""
        loaded = self.store.load()
        if loaded is None:
            return
        if loaded.stream_arn != self.stream_arn:
            self.notify(
                f"checkpoint {self.store.location} is for another stream ({loaded.stream_arn}); "
                "the table's stream was replaced, so reading starts from the oldest records of the new one"
            )
            return
        self.checkpoint = loaded

    def acknowledge(self, shard_id: str, sequence: str) -> None:
        self.checkpoint.positions[shard_id] = sequence
        self.store.save(self.checkpoint)

    def finish(self, shard_id: str) -> None:
        self.checkpoint.finished.add(shard_id)
        self.store.save(self.checkpoint)

    def forget_gone(self, listed: Container[str], report_gap: Callable[[Gap], Any]) -> None:
        """Shards gone from the stream (24 hours after they closed): a finished one is forgotten, an
        unfinished one lost its unread records (``report_gap``)."""
        checkpoint = self.checkpoint
        gone = [shard_id for shard_id in {*checkpoint.positions, *checkpoint.finished} if shard_id not in listed]
        for shard_id in gone:
            if shard_id not in checkpoint.finished:
                report_gap(Gap(shard_id, checkpoint.positions.get(shard_id), None, "the shard left the stream"))
            checkpoint.positions.pop(shard_id, None)
            checkpoint.finished.discard(shard_id)
        if gone:
            self.store.save(checkpoint)
