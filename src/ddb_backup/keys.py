"""Item keys, their canonical form, and the object names and paths derived from them.

Every writer (stream capture, full backup, restore tooling) names an item's object through
``object_name_for`` and places it through ``object_key_for``: one item, one name, whoever writes.
The rules are the contract in docs/format.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Any

TypedValue = dict[str, Any]  # one DynamoDB JSON value, e.g. {"S": "a"}
TypedItem = dict[str, TypedValue]  # an item or a key in DynamoDB JSON

KEY_TYPES = ("S", "N", "B")
PLAIN_TEXT_SEPARATOR = " | "
# A tenant segment no escaped value can produce: escaping always writes "%" + two upper-case hex digits.
MISSING_TENANT_SEGMENT = "%none"
# S3 keys are at most 1,024 bytes of UTF-8.
MAX_OBJECT_KEY_BYTES = 1024

_NUMBER_CONTEXT = Context(prec=100)  # DynamoDB keeps 38 significant digits; never round here
_UNSAFE_CHARS = frozenset("%/\\") | {chr(c) for c in range(0x20)} | {"\x7f"}


class InvalidKeyError(ValueError):
    """A key that cannot be named: absent, of a type a key cannot have, or malformed."""


@dataclass(frozen=True)
class KeySchema:
    """The key attributes of a table: the hash (partition) key and, if any, the range (sort) key."""

    hash_key: str
    range_key: str | None = None

    @property
    def attribute_names(self) -> tuple[str, ...]:
        return (self.hash_key,) if self.range_key is None else (self.hash_key, self.range_key)

    @classmethod
    def from_describe_table(cls, table: Mapping[str, Any]) -> KeySchema:
        """Build from the ``Table`` part of a DescribeTable answer."""
        roles = {element["KeyType"]: element["AttributeName"] for element in table["KeySchema"]}
        return cls(hash_key=roles["HASH"], range_key=roles.get("RANGE"))


def canonical_number(text: str) -> str:
    """The one spelling of a DynamoDB number: ``1``, ``1.0``, ``1E0`` and ``+1`` all give ``1``."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as err:
        raise InvalidKeyError(f"not a number: {text!r}") from err
    if not value.is_finite():
        raise InvalidKeyError(f"not a finite number: {text!r}")
    if value.is_zero():
        return "0"
    return format(value.normalize(_NUMBER_CONTEXT), "f")


def _binary_text(value: Any) -> str:
    """Binary values arrive as base64 text (stream JSON) or bytes (boto3); name them by their base64."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, str):
        try:
            return base64.b64encode(base64.b64decode(value, validate=True)).decode("ascii")
        except ValueError as err:
            raise InvalidKeyError(f"binary key value is not valid base64: {value[:40]!r}") from err
    raise InvalidKeyError(f"binary key value of unexpected type {type(value).__name__}")


def canonical_scalar(typed: Mapping[str, Any]) -> tuple[str, str]:
    """``(type, canonical text)`` of one key value in DynamoDB JSON."""
    if not isinstance(typed, Mapping) or len(typed) != 1:
        raise InvalidKeyError(f"a key value must be one typed value like {{'S': 'a'}}, got {typed!r}")
    ((type_name, raw),) = typed.items()
    if type_name == "S":
        if not isinstance(raw, str):
            raise InvalidKeyError(f"string key value is not text: {raw!r}")
        return "S", raw
    if type_name == "N":
        return "N", canonical_number(str(raw))
    if type_name == "B":
        return "B", _binary_text(raw)
    raise InvalidKeyError(f"key attributes must be S, N or B, not {type_name}")


def canonical_key(key: Mapping[str, Any]) -> TypedItem:
    """The key with canonical values, e.g. ``{"n": {"N": "1.0"}}`` -> ``{"n": {"N": "1"}}``."""
    if not key:
        raise InvalidKeyError("the record has no key attributes (dynamodb.Keys is empty or missing)")
    canonical = {name: dict([canonical_scalar(value)]) for name, value in key.items()}
    for name, value in canonical.items():
        if next(iter(value.values())) == "":
            raise InvalidKeyError(
                f"key attribute {name!r} is empty, which DynamoDB never allows in a key: {key!r:.200}"
            )
    return canonical


def key_json(key: Mapping[str, Any]) -> str:
    """Compact, sorted DynamoDB JSON of the canonical key: stored in version metadata."""
    return json.dumps(canonical_key(key), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_identity(key: Mapping[str, Any]) -> str:
    """A string equal for two keys exactly when they name the same item (used to group records)."""
    return key_json(key)


def md5_object_name(key: Mapping[str, Any]) -> str:
    """MD5 hex of ``key_json(key)``: attributes sorted by name, values canonical."""
    return hashlib.md5(key_json(key).encode("utf-8"), usedforsecurity=False).hexdigest()


def escape_segment(text: str) -> str:
    """Make ``text`` one safe path segment: it can neither add a level (``/``) nor climb one (``..``).

    ``%``, ``/``, ``\\`` and control characters become ``%XX`` (upper-case hex of each UTF-8 byte);
    a segment of only dots has every dot escaped. Everything else, unicode included, stays as is.
    """
    escaped = "".join(_escape_char(char) if char in _UNSAFE_CHARS else char for char in text)
    if escaped and set(escaped) == {"."}:
        escaped = "%2E" * len(escaped)
    return escaped


def _escape_char(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def plain_text_object_name(key: Mapping[str, Any], schema: KeySchema) -> str:
    """``HASH | RANGE`` (or ``HASH``) of canonical values in key-schema order, escaped."""
    values = []
    for name in schema.attribute_names:
        if name not in key:
            raise InvalidKeyError(f"key attribute {name!r} of the table's key schema is missing from the record")
        values.append(canonical_scalar(key[name])[1])
    return escape_segment(PLAIN_TEXT_SEPARATOR.join(values))


def object_name_for(key: Mapping[str, Any], *, plain_text: bool, schema: KeySchema | None = None) -> str:
    """The object name of an item: MD5 of the canonical key, or its escaped plain text."""
    if not plain_text:
        return md5_object_name(key)
    if schema is None:
        raise ValueError("plain-text object names need the table's key schema")
    return plain_text_object_name(key, schema)


def tenant_segment(tenant: Mapping[str, Any] | None) -> str:
    """The path segment of a tenant value (S, N or B); a missing or empty value gets the reserved one."""
    if tenant is None:
        return MISSING_TENANT_SEGMENT
    type_name, text = canonical_scalar(tenant)
    if type_name == "S" and text == "":
        return MISSING_TENANT_SEGMENT
    return escape_segment(text)


def prefix_parts(prefix: str) -> list[str]:
    """The BackupPrefix's folders: no leading, trailing or empty segments."""
    return [part for part in prefix.strip("/").split("/") if part]


def table_prefix(prefix: str, table: str, tenant: str | None = None) -> str:
    """``[prefix/]table/[tenant/]``: where a table's (or a tenant's) objects live, ending in ``/``."""
    parts = prefix_parts(prefix)
    parts.append(escape_segment(table))
    if tenant is not None:
        parts.append(tenant)
    return "/".join(parts) + "/"


def object_key_for(prefix: str, table: str, object_name: str, tenant: str | None = None) -> str:
    """The S3 key ``[prefix/]table/[tenant/]object_name``; no leading or doubled ``/``."""
    return table_prefix(prefix, table, tenant) + object_name


@dataclass(frozen=True)
class ItemNamer:
    """Names items of one table the way every writer must: the settings plus the table's key schema."""

    prefix: str
    table: str
    plain_text: bool
    schema: KeySchema | None = None

    def object_key(self, key: Mapping[str, Any], tenant: str | None = None) -> str:
        name = object_name_for(key, plain_text=self.plain_text, schema=self.schema)
        object_key = object_key_for(self.prefix, self.table, name, tenant)
        if self.plain_text and len(object_key.encode("utf-8")) > MAX_OBJECT_KEY_BYTES:
            # Too long for S3 as plain text: the MD5 name is the documented fallback.
            object_key = object_key_for(self.prefix, self.table, md5_object_name(key), tenant)
        return object_key
