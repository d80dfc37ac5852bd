"""Resume state of a restore: the query it answers and the key ranges already written.

A range is marked finished only once every item of it is written, so a crash at any point loses at
most the ranges in flight (and those finished in the last second), and redoing them writes the same
images again (puts are idempotent). The file is replaced atomically, at most once a second and when
the run stops. With ``--sync``, the present set of each finished range is appended to a side file
(``<checkpoint>.present``, 16 bytes per item key) before the checkpoint marks the range. The phase
turns from ``write`` to ``sync`` only once every write is acknowledged and every range finished, so
the present set read for the deletes is complete, and a resume in the ``sync`` phase only deletes
(docs/format.md, "Restore checkpoints and rejects").
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ddb_backup.errors import BackupError, UserError
from ddb_backup.format.version_meta import epoch_to_iso
from ddb_backup.restore.writer import RESUME_HINT

CHECKPOINT_FORMAT = 1
DIGEST_BYTES = 16
PHASE_WRITE = "write"
PHASE_SYNC = "sync"
SAVE_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class Query:
    """What a restore computes and where it writes; a checkpoint serves only the same query."""

    bucket: str
    prefix: str
    source: str
    target: str
    at: float
    tenant: str | None = None
    keys: tuple[str, ...] = ()
    segment: int = 0
    total_segments: int = 1
    sync: bool = False
    max_lag: float = 0.0

    def differences(self, other: Query, *, ignore_at: bool = False) -> list[str]:
        """Each differing field as ``name X (checkpoint) vs Y (now)``; times in UTC, durations in seconds."""
        mine, theirs = asdict(self), asdict(other)
        return [
            f"{name} {_shown(name, theirs[name])} (checkpoint) vs {_shown(name, mine[name])} (now)"
            for name in mine
            if mine[name] != theirs[name] and not (ignore_at and name == "at")
        ]


def _shown(name: str, value: object) -> str:
    if name == "at" and isinstance(value, int | float):
        return epoch_to_iso(value)  # TIME as the user wrote it, not an epoch float
    if name == "max_lag" and isinstance(value, int | float):
        return f"{value:g}s"
    return repr(value)


def default_path(target: str, segment: int = 0, total_segments: int = 1) -> Path:
    """``./ddb-backup-restore-<target>[.<i>-of-<n>].json`` in the current directory."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", target)
    share = f".{segment}-of-{total_segments}" if total_segments > 1 else ""
    return Path(f"ddb-backup-restore-{safe}{share}.json")


@dataclass
class Checkpoint:
    path: Path
    query: Query
    scheme: str | None = None  # how the table's ranges were cut (kept so a resume cuts them the same)
    finished: set[int] = field(default_factory=set)
    phase: str = PHASE_WRITE
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _digests: list[bytes] = field(default_factory=list, repr=False, compare=False)
    _saved_at: float = field(default=0.0, repr=False, compare=False)
    _dirty: bool = field(default=False, repr=False, compare=False)

    @property
    def present_path(self) -> Path:
        return self.path.with_name(self.path.name + ".present")

    @staticmethod
    def refuse_existing(path: Path) -> None:
        if path.exists():
            raise UserError(
                f"a checkpoint of an unfinished restore exists at {path}",
                "add --resume to finish that restore, or delete the file to start over",
            )

    @classmethod
    def start(cls, path: Path, query: Query, scheme: str | None) -> Checkpoint:
        cls.refuse_existing(path)
        checkpoint = cls(path, query, scheme)
        checkpoint.present_path.unlink(missing_ok=True)
        checkpoint.save()
        return checkpoint

    @classmethod
    def resume(cls, path: Path, query: Query, *, at_relative: bool) -> Checkpoint:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise UserError(f"no checkpoint at {path} to resume", "run without --resume to start the restore") from err
        except ValueError as err:
            raise UserError(f"the checkpoint {path} cannot be read: {err}", "delete it and start over") from err
        saved = Query(**{**data["query"], "keys": tuple(data["query"]["keys"])})
        differences = query.differences(saved, ignore_at=at_relative)
        if differences:
            raise UserError(
                f"the checkpoint {path} is for another restore: " + "; ".join(differences),
                "run the same command as before, or use --checkpoint PATH for a new restore",
            )
        checkpoint = cls(path, saved, data.get("scheme"), set(data["finished"]), data.get("phase", PHASE_WRITE))
        checkpoint.drop_torn_digest()
        return checkpoint

    def drop_torn_digest(self) -> None:
        """Cut a digest torn by a crash mid-append, so later appends stay aligned."""
        if self.present_path.exists():
            size = self.present_path.stat().st_size
            if size % DIGEST_BYTES:
                os.truncate(self.present_path, size - size % DIGEST_BYTES)

    def save(self) -> None:
        """Write the file now (the digests of the ranges it marks finished first)."""
        with self._lock:
            self._save()

    def _save(self) -> None:
        if self._digests:
            with self.present_path.open("ab") as out:
                out.write(b"".join(self._digests))
                out.flush()
                os.fsync(out.fileno())
            self._digests = []
        data: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "query": asdict(self.query),
            "scheme": self.scheme,
            "finished": sorted(self.finished),
            "phase": self.phase,
        }
        _atomic_write(self.path, json.dumps(data, indent=1).encode("utf-8"))
        self._saved_at, self._dirty = time.monotonic(), False

    def finish_range(self, index: int, present_digests: Iterable[bytes] = ()) -> None:
        """Mark a range finished; written at most every ``SAVE_EVERY_SECONDS`` (``save`` forces it).
        A crash before the write only means the range is done again."""
        with self._lock:
            self._digests.extend(present_digests)
            self.finished.add(index)
            self._dirty = True
            if time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS:
                self._save()

    def save_if_changed(self) -> None:
        with self._lock:
            if self._dirty:
                self._save()

    def enter_phase(self, phase: str) -> None:
        with self._lock:
            self.phase = phase
            self._save()

    def require_finished(self, indexes: Iterable[int]) -> None:
        """Refuse to go on (to the deletes) unless every range of ``indexes`` is finished: a bug, never an
        expected state, once every write returned."""
        unfinished = [index for index in indexes if index not in self.finished]
        if unfinished:
            raise BackupError(f"key ranges {unfinished[:5]} not finished after every write returned", RESUME_HINT)

    def present_digests(self) -> set[bytes]:
        if not self.present_path.exists():
            return set()
        raw = self.present_path.read_bytes()
        usable = len(raw) - len(raw) % DIGEST_BYTES  # a torn last write belongs to an unfinished range
        return {raw[at : at + DIGEST_BYTES] for at in range(0, usable, DIGEST_BYTES)}

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.present_path.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
