"""A tiny in-memory DynamoDB client (the calls restore makes) for fast property tests.

It keeps DynamoDB's rules that restore must respect: at most 25 requests per BatchWriteItem, no key
twice in one batch, binary values as bytes. Measured here (hypothesis statistics of
tests/test_restore_property.py): one example takes about 23-205 ms with this fake and 144-1177 ms
through moto's ``mock_aws``, so hypothesis runs many histories against the fake and a smaller run
against moto.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from botocore.exceptions import ClientError

from ddb_backup.format import keys as k


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def stored_value(value: Any) -> Any:
    """Client values (bytes) as DynamoDB JSON text (base64), to compare with stream images."""
    ((kind, raw),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(raw).decode("ascii")}
    if kind == "L":
        return {"L": [stored_value(member) for member in raw]}
    if kind == "M":
        return {"M": {name: stored_value(member) for name, member in raw.items()}}
    return {kind: raw}


class FakeDynamoDB:
    PAGE = 7  # small pages, so pagination is exercised

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, dict[str, Any]]] = {}
        self.batch_calls = 0
        self._lock = threading.Lock()

    def create_table(self, **args: Any) -> dict[str, Any]:
        name = args["TableName"]
        if name in self.tables:
            raise _error("ResourceInUseException", f"table {name} exists", "CreateTable")
        mode = args.get("BillingMode", "PROVISIONED")
        self.tables[name] = {**args, "TableStatus": "ACTIVE", "BillingModeSummary": {"BillingMode": mode}}
        self.items[name] = {}
        return {"TableDescription": self.tables[name]}

    def describe_table(self, TableName: str) -> dict[str, Any]:
        if TableName not in self.tables:
            raise _error("ResourceNotFoundException", f"table {TableName} not found", "DescribeTable")
        return {"Table": self.tables[TableName]}

    def _identity(self, table: str, item: dict[str, Any]) -> str:
        schema = k.KeySchema.from_describe_table(self.tables[table])
        return k.key_json({name: item[name] for name in schema.attribute_names})

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        with self._lock:
            self.batch_calls += 1
            for table, requests in RequestItems.items():
                self.describe_table(table)
                if len(requests) > 25:
                    raise _error("ValidationException", "Too many items requested", "BatchWriteItem")
                identities = [self._identity(table, _item_of(request)) for request in requests]
                if len(set(identities)) != len(identities):
                    raise _error("ValidationException", "Provided list of item keys contains duplicates", "BWI")
                for identity, request in zip(identities, requests, strict=True):
                    if "PutRequest" in request:
                        _check_client_shape(request["PutRequest"]["Item"])
                        self.items[table][identity] = request["PutRequest"]["Item"]
                    else:
                        self.items[table].pop(identity, None)
        return {"UnprocessedItems": {}}

    def scan(self, TableName: str, **args: Any) -> dict[str, Any]:
        self.describe_table(TableName)
        with self._lock:
            rows = sorted(self.items[TableName].items())
        start = args.get("ExclusiveStartKey")
        if start is not None:
            after = self._identity(TableName, start)
            rows = [row for row in rows if row[0] > after]
        limit = min(args.get("Limit") or self.PAGE, self.PAGE)
        page, more = rows[:limit], len(rows) > limit
        answer: dict[str, Any] = {"Count": len(page)}
        if args.get("Select") != "COUNT":
            answer["Items"] = [item for _, item in page]
        if more:
            schema = k.KeySchema.from_describe_table(self.tables[TableName])
            answer["LastEvaluatedKey"] = {name: page[-1][1][name] for name in schema.attribute_names}
        return answer

    def put_item(self, TableName: str, Item: dict[str, Any]) -> dict[str, Any]:
        self.batch_write_item(RequestItems={TableName: [{"PutRequest": {"Item": Item}}]})
        return {}

    def dump(self, table: str) -> dict[str, dict[str, Any]]:
        """The table's items as DynamoDB JSON (binary as base64), by key_json."""
        return {identity: {n: stored_value(v) for n, v in item.items()} for identity, item in self.items[table].items()}


def _item_of(request: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"]
    return item


def _check_client_shape(item: dict[str, Any]) -> None:
    text = json.dumps(item, default=lambda value: "<bytes>" if isinstance(value, bytes) else str(value))
    if '"B": "' in text and '"B": "<bytes>"' not in text:
        raise _error("ValidationException", "binary values must be bytes", "BatchWriteItem")


class CrashAfter:
    """A DynamoDB client whose BatchWriteItem dies (not retryably) from its ``n``-th call on: the process
    crashing mid-restore. Every other call goes to ``client``."""

    def __init__(self, client: Any, n: int) -> None:
        self.client, self.n, self.calls = client, n, 0

    def batch_write_item(self, **args: Any) -> Any:
        self.calls += 1
        if self.calls >= self.n:
            raise _error("InternalFailure", "crash", "BatchWriteItem")
        return self.client.batch_write_item(**args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
