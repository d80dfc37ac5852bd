"""What a restore returns for one object at a time, by the planner's own per-item rule."""

from __future__ import annotations

import json
from typing import Any

from ddb_backup.format import version_meta as vm
from ddb_backup.restore.timeline import state_at
from ddb_backup.store import ObjectStore


def image_at(store: ObjectStore, key: str, at: float) -> dict[str, Any] | None:
    rows = [row for row in store.list_versions(key) if row.key == key]

    def read_meta(row: Any) -> vm.VersionMeta | None:
        return vm.VersionMeta.from_s3(store.head(key, row.version_id).metadata)

    state = state_at(list(reversed(rows)), at, read_meta)
    if state.version is None:
        return None
    body: dict[str, Any] = json.loads(store.get(key, state.version.version_id).body)
    return body
