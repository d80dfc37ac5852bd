"""The rejects file: items the target refused, one DynamoDB JSON line each, with DynamoDB's reason.

Each line is ``{"Item": {...}, "reason": "...", "at": "<TIME>"}`` (``"Key"`` instead of ``"Item"``
for a refused ``--sync`` delete); ``Item`` is in the DynamoDB JSON that ``export`` writes and AWS's
"Import from S3" reads, binary as base64. The file is created with mode 0600 (it holds table data) and
appended to, so a resumed restore adds to it; an item redone after a crash may appear twice.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ddb_backup.format.version_meta import epoch_to_iso

FILE_MODE = 0o600


def default_rejects_path(checkpoint: Path) -> Path:
    """``ddb-backup-restore-<target>.rejects.jsonl`` beside the checkpoint file."""
    return checkpoint.with_name(checkpoint.stem + ".rejects.jsonl")


class RejectsFile:
    """Opened on the first reject; ``add`` is safe from any thread."""

    def __init__(self, path: Path, *, at: float) -> None:
        self.path, self.at = path, epoch_to_iso(at)
        self.count = 0
        self._out: IO[str] | None = None
        self._lock = threading.Lock()

    def add(self, kind: str, item: Mapping[str, Any], reason: str) -> None:
        line = json.dumps({"Item" if kind == "put" else "Key": item, "reason": reason, "at": self.at})
        with self._lock:
            if self._out is None:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
                os.fchmod(descriptor, FILE_MODE)
                self._out = os.fdopen(descriptor, "a", encoding="utf-8")
            self._out.write(line + "\n")
            self._out.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None
