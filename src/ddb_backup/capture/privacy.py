"""What may go into logs and error reports about an item: a reference, never its values.

Key values (an e-mail address as a key, say), tenant values and attribute values are personal data;
object names carry them too in plain-text mode and in tenant folders. Writers log an item by its
**reference**, ``item <md5>``: the MD5 name of its canonical key (docs/format.md, "MD5 names"), the
same for every writer and every run, the object's own name in the default naming mode, and not
reversible (short of guessing the exact key). Error texts are **scrubbed** before they are logged: the
object keys the failing item touches, and the strings in its key and images, are replaced by the
reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from ddb_backup.format import keys as k

REDACTED = "<value>"
# Shorter strings are left alone: too common to mean anything ("id", "N"), and replacing them would
# mangle the rest of a message (operation names); so are short digit strings, which could be part of
# a sequence number.
MIN_SCRUBBED_LENGTH = 4
MIN_SCRUBBED_DIGITS = 8


def item_ref(key: Any) -> str:
    """``item <md5 name>`` for a typed key map; a key that cannot be canonicalised is referenced by
    the MD5 of its raw JSON (still stable, still not its values)."""
    try:
        return f"item {k.md5_object_name(key)}"
    except (k.InvalidKeyError, TypeError, ValueError, AttributeError):
        raw = json.dumps(key, sort_keys=True, default=repr, ensure_ascii=False)
        return f"item {hashlib.md5(raw.encode('utf-8'), usedforsecurity=False).hexdigest()}"


def strings_of(value: Any) -> Iterable[str]:
    """Every string value inside a DynamoDB JSON value or image (not attribute names or type tags:
    scrubbing those would mangle messages, and they describe the schema, not a person)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        for inner in value.values():
            yield from strings_of(inner)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for inner in value:
            yield from strings_of(inner)


def spellings(text: str) -> set[str]:
    """How ``text`` can appear in a message: as is, JSON-escaped (metadata, bodies), or percent-encoded
    (the request URL in botocore's connection errors: a key or a listing prefix)."""
    return {
        text,
        json.dumps(text, ensure_ascii=True)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        quote(text, safe=""),
        quote(text, safe="/"),
        quote(text, safe="/~"),
        quote_plus(text, safe=""),
    }


def _replace(text: str, secrets: Iterable[str], replacement: str) -> str:
    spelled = {form for secret in secrets for form in spellings(secret) if form}
    for form in sorted(spelled, key=len, reverse=True):  # longest first: no fragment of a longer one left
        text = text.replace(form, replacement)
    return text


def scrub(text: str, ref: str, *, object_keys: Iterable[str] = (), values: Iterable[Any] = ()) -> str:
    """``text`` with each object key replaced by ``<object of ref>`` and each string of ``values``
    (images, keys) by ``<value>``, in every spelling (``spellings``)."""
    text = _replace(text, set(object_keys), f"<object of {ref}>")
    secrets = {
        s
        for s in strings_of(list(values))
        if len(s) >= MIN_SCRUBBED_LENGTH and (len(s) >= MIN_SCRUBBED_DIGITS or not s.isdigit())
    }
    return _replace(text, secrets, REDACTED)
