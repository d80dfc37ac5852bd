"""Item images (DynamoDB JSON) compared: a canonical form, a digest, and the attributes that changed.

The same item read from a stream record and from a Scan can be spelled differently (attribute order,
set order, ``1.0`` vs ``1``, binary as bytes or base64 text); the canonical form makes them equal.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ddb_backup.format import keys as k

T = TypeVar("T")
R = TypeVar("R")

_SETS = {"SS": "S", "NS": "N", "BS": "B"}


def canonical_value(typed: Mapping[str, Any]) -> Any:
    """One typed value with canonical numbers, base64 binaries, sorted sets (nested values too)."""
    ((type_name, raw),) = typed.items()
    if type_name in ("S", "N", "B"):
        return dict([k.canonical_scalar({type_name: raw})])
    if type_name in _SETS:
        scalar = _SETS[type_name]
        return {type_name: sorted(k.canonical_scalar({scalar: value})[1] for value in raw)}
    if type_name == "L":
        return {"L": [canonical_value(value) for value in raw]}
    if type_name == "M":
        return {"M": canonical_image(raw)}
    return {type_name: raw}  # BOOL, NULL


def canonical_image(image: Mapping[str, Any]) -> dict[str, Any]:
    return {name: canonical_value(value) for name, value in image.items()}


def image_digest(image: Mapping[str, Any]) -> bytes:
    """16 bytes equal for two images exactly when they hold the same item."""
    text = json.dumps(canonical_image(image), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def to_json_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """An image as JSON can hold it: binary values (bytes from boto3) as base64 text, as in stream records."""
    return {name: _json_value(value) for name, value in image.items()}


def _json_value(typed: Mapping[str, Any]) -> Any:
    ((type_name, raw),) = typed.items()
    if type_name == "B":
        return {"B": _b64(raw)}
    if type_name == "BS":
        return {"BS": [_b64(value) for value in raw]}
    if type_name == "L":
        return {"L": [_json_value(value) for value in raw]}
    if type_name == "M":
        return {"M": to_json_image(raw)}
    return {type_name: raw}


def _b64(raw: Any) -> str:
    if isinstance(raw, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(raw)).decode("ascii")
    return str(raw)


@dataclass(frozen=True)
class AttributeChanges:
    """Names of the attributes added, removed and changed from one image to the next."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


def attribute_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> AttributeChanges:
    """What changed from ``old`` to ``new`` (``None``: the item was absent)."""
    before, after = canonical_image(old or {}), canonical_image(new or {})
    return AttributeChanges(
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        changed=sorted(name for name in set(before) & set(after) if before[name] != after[name]),
    )


def item_key(image: Mapping[str, Any], schema: k.KeySchema) -> k.TypedItem:
    """The key attributes of an item (canonical)."""
    return k.canonical_key({name: image[name] for name in schema.attribute_names if name in image})


def map_bounded(work: Callable[[T], R], inputs: Iterable[T], *, workers: int = 16) -> Iterator[tuple[T, R]]:
    """``(input, work(input))`` with at most ``workers`` calls in flight and at most twice that many
    inputs held, in input order (the reads of one listing, done concurrently)."""
    pending: deque[tuple[T, Future[R]]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="read") as pool:
        for value in inputs:
            pending.append((value, pool.submit(work, value)))
            if len(pending) >= 2 * workers:
                first, future = pending.popleft()
                yield first, future.result()
        for value, future in pending:
            yield value, future.result()
