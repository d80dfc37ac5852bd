"""GIVEN helper: a bucket written the way the original Node.js tool writes it (issue 13, from its behaviour).

- object key ``[BackupPrefix, table, tenant?, name].join('/')``: a leading ``/`` when the prefix is unset;
- name ``md5(JSON.stringify(Keys))`` in the order the record gives the key map, or (plain text) the
  key's values ordered by attribute NAME joined with `` | ``, nothing escaped;
- tenant segment unescaped (from NewImage, else OldImage);
- INSERT/MODIFY: body ``JSON.stringify(NewImage)``, no metadata, ``application/octet-stream``;
- REMOVE: a plain delete (a delete marker only).

Written here from that description, not from the original project's files.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ddb_backup.capture.records import table_name_from_arn
from ddb_backup.store import ObjectStore


def js_stringify(value: Any) -> str:
    """JavaScript's ``JSON.stringify`` for the JSON values a stream record holds (insertion order kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _scalar(typed: dict[str, Any]) -> str:
    return str(next(iter(typed.values())))


class OriginalTool:
    """Writes stream records into ``store`` as the original Lambda does."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        prefix: str | None = None,
        plain_text: bool = False,
        tenant_column: str | None = None,
        clock: Any = None,
    ) -> None:
        self.store, self.prefix, self.plain_text, self.tenant_column = store, prefix, plain_text, tenant_column
        self.clock = clock

    def name(self, keys: dict[str, Any]) -> str:
        if self.plain_text:
            return " | ".join(_scalar(keys[name]) for name in sorted(keys))
        return hashlib.md5(js_stringify(keys).encode("utf-8")).hexdigest()

    def object_key(self, record: dict[str, Any]) -> str:
        dynamodb = record["dynamodb"]
        parts = ["" if self.prefix is None else self.prefix, table_name_from_arn(record["eventSourceARN"])]
        if self.tenant_column is not None:
            image = dynamodb.get("NewImage") or dynamodb.get("OldImage") or {}
            if self.tenant_column not in image:
                raise ValueError("the original tool fails the batch on a missing tenant")
            parts.append(_scalar(image[self.tenant_column]))
        parts.append(self.name(dynamodb["Keys"]))
        return "/".join(parts)

    def process(self, records: list[dict[str, Any]], *, lag: float = 2.0) -> None:
        for record in records:
            if self.clock is not None:
                self.clock.now = record["dynamodb"]["ApproximateCreationDateTime"] + lag
            key = self.object_key(record)
            if record["eventName"] == "REMOVE":
                self.store.delete(key)
            else:
                body = js_stringify(record["dynamodb"]["NewImage"]).encode("utf-8")
                self.store.put(key, body, {}, content_type="application/octet-stream")
