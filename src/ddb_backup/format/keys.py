"""Item keys, their canonical form, and the object names and paths derived from them.

Every writer (stream capture, full backup, restore tooling) names an item's object through
``object_name_for`` and places it through ``object_key_for``: one item, one name, whoever writes.
The rules are the contract in docs/format.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Any

TypedValue = dict[str, Any]  # one DynamoDB JSON value, e.g. {"S": "a"}
TypedItem = dict[str, TypedValue]  # an item or a key in DynamoDB JSON

KEY_TYPES = ("S", "N", "B")
PLAIN_TEXT_SEPARATOR = " | "
# Segments no escaped value can produce: escaping always writes "%" + two upper-case hex digits.
MISSING_TENANT_SEGMENT = "%none"
HASHED_SEGMENT_PREFIX = "%md5-"  # + 32 hex digits: a tenant or an object name too long to spell out
HASHED_SEGMENT_BYTES = len(HASHED_SEGMENT_PREFIX) + 32
# S3 keys are at most 1,024 bytes of UTF-8 (docs/format.md, "The 1,024-byte rule").
MAX_OBJECT_KEY_BYTES = 1024
MAX_TENANT_SEGMENT_BYTES = 200  # a longer escaped tenant is written hashed
MAX_PREFIX_BYTES = 512  # BackupPrefix, without its surrounding "/"
MAX_TABLE_NAME_BYTES = 255  # DynamoDB's limit on a table name ([a-zA-Z0-9_.-]{3,255})

_NUMBER_CONTEXT = Context(prec=100)  # DynamoDB keeps 38 significant digits; never round here
_UNSAFE_CHARS = frozenset("%/\\") | {chr(c) for c in range(0x20)} | {"\x7f"}
# In a plain-text name "|" is escaped too, so " | " is only ever the separator (format 2).
_UNSAFE_IN_NAME = _UNSAFE_CHARS | {"|"}


class InvalidKeyError(ValueError):
    """A key that cannot be named: absent, of a type a key cannot have, or malformed.

    Messages name attributes and types, never values (logs must not carry the table's data).
    """


class KeyTooLongError(InvalidKeyError):
    """``[BackupPrefix/]TableName/`` leaves no room for a tenant and a name within S3's 1,024 bytes."""


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
        raise InvalidKeyError("an N value is not a number") from err
    if not value.is_finite():
        raise InvalidKeyError("an N value is not a finite number")
    if value.is_zero():
        return "0"
    return format(value.normalize(_NUMBER_CONTEXT), "f")


_EXACT = Context(prec=1000, Emax=10**6, Emin=-(10**6))  # normalises any canonical number without rounding
MAX_DIGITS = 38
SMALLEST_EXPONENT, LARGEST_EXPONENT = -130, 125  # 1E-130 to 9.9999999999999999999999999999999999999E+125


class NumberOutOfRange(ArithmeticError):
    """A number DynamoDB cannot store."""


def check_number(text: str) -> None:
    """``NumberOutOfRange`` unless DynamoDB can store the number ``text``: at most 38 significant digits
    (trailing zeros of a written-out number are not significant: ``1E+40`` is one digit), magnitude 1E-130
    to 9.9999999999999999999999999999999999999E+125, or zero (DynamoDB developer guide, "Number")."""
    number = Decimal(text).normalize(_EXACT)
    if number.is_zero():
        return
    if len(number.as_tuple().digits) > MAX_DIGITS:
        raise NumberOutOfRange(f"{text} has more than {MAX_DIGITS} significant digits")
    if not SMALLEST_EXPONENT <= number.adjusted() <= LARGEST_EXPONENT:
        raise NumberOutOfRange(f"{text} is outside 1E-130 to 9.99E+125")


def _binary_text(value: Any) -> str:
    """Binary values arrive as base64 text (stream JSON) or bytes (boto3); name them by their base64."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, str):
        try:
            return base64.b64encode(base64.b64decode(value, validate=True)).decode("ascii")
        except ValueError as err:
            raise InvalidKeyError("a B value is not valid base64") from err
    raise InvalidKeyError(f"binary key value of unexpected type {type(value).__name__}")


def canonical_scalar(typed: Mapping[str, Any]) -> tuple[str, str]:
    """``(type, canonical text)`` of one key value in DynamoDB JSON."""
    if not isinstance(typed, Mapping) or len(typed) != 1:
        raise InvalidKeyError(f"a key value must be one typed value like {{'S': 'a'}}, got a {type(typed).__name__}")
    ((type_name, raw),) = typed.items()
    if type_name == "S":
        if not isinstance(raw, str):
            raise InvalidKeyError(f"an S value is a {type(raw).__name__}, not text")
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
            raise InvalidKeyError(f"key attribute {name!r} is empty, which DynamoDB never allows in a key")
    return canonical


def key_json(key: Mapping[str, Any]) -> str:
    """Compact, sorted DynamoDB JSON of the canonical key: stored in version metadata."""
    return canonical_key_json(canonical_key(key))


def canonical_key_json(canonical: Mapping[str, Any]) -> str:
    """``key_json`` of a key that is canonical already (``canonical_key``'s answer): not canonicalised
    again. Capture computes a record's canonical key and its JSON once and names it with them."""
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_identity(key: Mapping[str, Any]) -> str:
    """A string equal for two keys exactly when they name the same item (used to group records)."""
    return key_json(key)


def md5_hex(text: str) -> str:
    """32 lower-case hex digits of the MD5 of ``text``'s UTF-8."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def md5_object_name(key: Mapping[str, Any], key_json_text: str | None = None) -> str:
    """MD5 hex of ``key_json(key)``: attributes sorted by name, values canonical (``key_json_text``: that
    JSON when the caller has it)."""
    return md5_hex(key_json(key) if key_json_text is None else key_json_text)


def hashed_object_name(key: Mapping[str, Any], key_json_text: str | None = None) -> str:
    """The plain-text mode's name for a key too long to spell out: ``%md5-`` + the MD5 name.

    No plain-text name starts with ``%m`` (escapes are ``%`` + two upper-case hex digits), so the
    fallback can never be another item's plain-text name, not even one whose key is an MD5 in hex.
    """
    return HASHED_SEGMENT_PREFIX + md5_object_name(key, key_json_text)


def _escape(text: str, unsafe: frozenset[str]) -> str:
    if unsafe.isdisjoint(text):
        return text  # the common case, without a generator step per character
    return "".join(_escape_char(char) if char in unsafe else char for char in text)


def _escape_dots(segment: str) -> str:
    """A segment of only dots has every dot escaped (so no segment is ``.`` or ``..``)."""
    return "%2E" * len(segment) if segment and set(segment) == {"."} else segment


def escape_segment(text: str) -> str:
    """Make ``text`` one safe path segment: it can neither add a level (``/``) nor climb one (``..``).

    ``%``, ``/``, ``\\`` and control characters become ``%XX`` (upper-case hex of each UTF-8 byte);
    a segment of only dots has every dot escaped. Everything else, unicode included, stays as is.
    """
    return _escape_dots(_escape(text, _UNSAFE_CHARS))


def _escape_char(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def _key_texts(key: Mapping[str, Any], schema: KeySchema) -> list[str]:
    """The canonical text of each key attribute, in key-schema order (hash key first)."""
    values = []
    for name in schema.attribute_names:
        if name not in key:
            raise InvalidKeyError(f"key attribute {name!r} of the table's key schema is missing from the record")
        values.append(canonical_scalar(key[name])[1])
    return values


def plain_text_object_name(key: Mapping[str, Any], schema: KeySchema) -> str:
    """``HASH | RANGE`` (or ``HASH``) of canonical values in key-schema order, each value escaped.

    A ``|`` inside a value is escaped (``%7C``) with ``%``, ``/``, ``\\`` and control characters, so
    `` | `` only ever separates the two values and two keys never share a name (docs/format.md).
    """
    values = [_escape(text, _UNSAFE_IN_NAME) for text in _key_texts(key, schema)]
    return _escape_dots(PLAIN_TEXT_SEPARATOR.join(values))


def format1_plain_text_object_name(key: Mapping[str, Any], schema: KeySchema) -> str:
    """The plain-text name format 1 gave the key: ``|`` inside values unescaped (not one-to-one).

    Only for readers of buckets written before format 2 (they merge an item's names); never written.
    """
    return escape_segment(PLAIN_TEXT_SEPARATOR.join(_key_texts(key, schema)))


def object_name_for(
    key: Mapping[str, Any], *, plain_text: bool, schema: KeySchema | None = None, key_json_text: str | None = None
) -> str:
    """The object name of an item: MD5 of the canonical key, or its escaped plain text (before the
    1,024-byte rule, which ``ItemNamer`` applies). ``key_json_text``: ``key_json(key)`` when known."""
    if not plain_text:
        return md5_object_name(key, key_json_text)
    if schema is None:
        raise ValueError("plain-text object names need the table's key schema")
    return plain_text_object_name(key, schema)


def object_names_of(key: Mapping[str, Any], schema: KeySchema | None) -> list[str]:
    """Every name the item's object may have in a bucket of this table, most likely first: the MD5
    name, and with a key schema the plain-text name, its hashed fallback, and format 1's plain-text
    name (which kept ``|`` unescaped and used the bare MD5 name as its fallback)."""
    names = [md5_object_name(key)]
    if schema is not None:
        names += [plain_text_object_name(key, schema), hashed_object_name(key)]
        format1 = format1_plain_text_object_name(key, schema)
        if format1 not in names:
            names.append(format1)
    return names


def tenant_text(tenant: Any) -> str | None:
    """The text a tenant value names its folder by: an S or N value's canonical text, a B value's
    base64; ``None`` when there is no usable tenant (absent, empty, NULL, BOOL, M, L, a set, or
    malformed). Never raises: a tenant value must never block a shard (docs/format.md)."""
    if not isinstance(tenant, Mapping) or len(tenant) != 1 or next(iter(tenant)) not in KEY_TYPES:
        return None
    try:
        text = canonical_scalar(tenant)[1]
    except InvalidKeyError:
        return None
    return text or None


def is_missing_tenant(tenant: Any) -> bool:
    """True when the value names no tenant, so the item is stored under ``%none`` (metric ``MissingTenant``)."""
    return tenant_text(tenant) is None


def _tenant_folder(text: str) -> str:
    """A tenant's text as a writer names its folder: escaped like a path segment, or ``%md5-`` + MD5
    of the text when the escaped form passes ``MAX_TENANT_SEGMENT_BYTES``."""
    segment = escape_segment(text)
    if len(segment.encode("utf-8")) > MAX_TENANT_SEGMENT_BYTES:
        return HASHED_SEGMENT_PREFIX + md5_hex(text)
    return segment


def tenant_segment(tenant: Any) -> str:
    """The path segment of a tenant value (DynamoDB JSON, any type, or ``None`` when absent).

    S, N and B values name their folder (escaped, hashed when long: ``%25none`` for the text
    ``%none``); every other value, and an absent or empty one, is stored under the reserved ``%none``.
    """
    text = tenant_text(tenant)
    return MISSING_TENANT_SEGMENT if text is None else _tenant_folder(text)


_HASHED_SEGMENT = re.compile(re.escape(HASHED_SEGMENT_PREFIX) + "[0-9a-f]{32}")


def tenant_segment_for_text(text: str) -> str:
    """The folder a tenant given as text names (``--tenant``): a reserved segment as ``tables`` shows it
    (``%none``, ``%md5-...``) as is, ``""`` as ``%none``, any other text as a writer names it (so S, N
    and B tenants are all found by their text)."""
    if text in ("", MISSING_TENANT_SEGMENT) or _HASHED_SEGMENT.fullmatch(text):
        return text or MISSING_TENANT_SEGMENT
    return _tenant_folder(text)


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


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def check_key_room(prefix: str, table: str, *, tenants: bool) -> None:
    """Raise ``KeyTooLongError`` unless every key of ``table`` fits in S3's 1,024 bytes: the folder
    ``[prefix/]table/``, the longest tenant segment (when ``tenants``) and a hashed name.

    Always true for a prefix within ``MAX_PREFIX_BYTES`` and a table name that is not all dots.
    """
    room = _utf8_len(table_prefix(prefix, table)) + HASHED_SEGMENT_BYTES
    room += MAX_TENANT_SEGMENT_BYTES + 1 if tenants else 0
    if room > MAX_OBJECT_KEY_BYTES:
        raise KeyTooLongError(_too_long_message(prefix, table))


def _too_long_message(prefix: str, table: str) -> str:
    folder = _utf8_len(table_prefix(prefix, table))
    return (
        f"objects of table {table[:40]!r} cannot be named within S3's {MAX_OBJECT_KEY_BYTES}-byte key limit: "
        f"the folder [BackupPrefix/]TableName/ alone is {folder} bytes; shorten BackupPrefix "
        f"(at most {MAX_PREFIX_BYTES} bytes, less with long table names)"
    )


@dataclass(frozen=True)
class ItemNamer:
    """Names items of one table the way every writer must: the settings plus the table's key schema."""

    prefix: str
    table: str
    plain_text: bool
    schema: KeySchema | None = None

    def object_key(self, key: Mapping[str, Any], tenant: str | None = None, *, key_json_text: str | None = None) -> str:
        """``[prefix/]table/[tenant/]name``, at most 1,024 bytes: a plain-text name that would pass
        the limit gives way to ``hashed_object_name``. ``tenant`` is a segment (``tenant_segment``);
        ``key_json_text`` is ``key_json(key)`` when the caller has it (capture: once per record)."""
        name = object_name_for(key, plain_text=self.plain_text, schema=self.schema, key_json_text=key_json_text)
        object_key = object_key_for(self.prefix, self.table, name, tenant)
        if self.plain_text and _utf8_len(object_key) > MAX_OBJECT_KEY_BYTES:
            # Too long for S3 as plain text: the hashed name is the documented fallback.
            object_key = object_key_for(self.prefix, self.table, hashed_object_name(key, key_json_text), tenant)
        if _utf8_len(object_key) > MAX_OBJECT_KEY_BYTES:
            raise KeyTooLongError(_too_long_message(self.prefix, self.table))
        return object_key
