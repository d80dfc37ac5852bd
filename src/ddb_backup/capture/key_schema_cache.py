"""Table descriptions: the key schema (for plain-text names), looked up once per table and cached."""

from __future__ import annotations

import threading
from typing import Any

from ddb_backup.format.keys import KeySchema


class KeySchemaCache:
    """``lookup(table)`` calls DescribeTable the first time a table is seen, then answers from memory."""

    def __init__(self, dynamodb_client: Any) -> None:
        self._client = dynamodb_client
        self._schemas: dict[str, KeySchema] = {}
        self._lock = threading.Lock()

    def lookup(self, table: str) -> KeySchema:
        with self._lock:
            cached = self._schemas.get(table)
        if cached is not None:
            return cached
        description = self._client.describe_table(TableName=table)["Table"]
        schema = KeySchema.from_describe_table(description)
        with self._lock:
            self._schemas[table] = schema
        return schema
