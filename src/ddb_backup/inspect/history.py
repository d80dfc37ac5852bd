"""One item's history: every version of its objects, oldest first, with what changed each time.

An item may be held under several names (ours, the original tool's, a leading-``/`` folder:
``aliases``): every one that exists is read, and their versions are merged into one history in the
format's order of changes (event time; ``LastModified`` for the original tool's versions). Versions of
one item are few, so each is read (HEAD for a removal, GET for an image, which also returns the
metadata). A delete marker that is the second half of one of our removals is folded into it
(``timeline.removal_halves``); any other delete marker is the original tool's delete. A version whose
body is not an item image (a stray object) is left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from boto3.dynamodb.types import TypeSerializer

from ddb_backup.errors import UserError
from ddb_backup.format import aliases as al
from ddb_backup.format import keys as k
from ddb_backup.format import version_meta as vm
from ddb_backup.inspect.images import AttributeChanges, attribute_changes
from ddb_backup.restore.locate import candidate_object_keys, find_object_keys
from ddb_backup.restore.resolve import Resolver, parse_image
from ddb_backup.restore.timeline import removal_halves
from ddb_backup.store import ObjectStore, VersionEntry

EVENT_NAMES = {
    vm.INSERT: "insert",
    vm.MODIFY: "modify",
    vm.REMOVE: "remove",
    vm.FULL_BACKUP: "full-backup",
}
TTL = "ttl"
ORIGINAL_TOOL = "original-tool"


@dataclass(frozen=True)
class HistoryEntry:
    """One change of the item as the backup holds it."""

    version_id: str
    event: str  # insert, modify, remove, ttl, full-backup
    event_time: float
    written: float  # S3 LastModified
    changes: AttributeChanges
    sequence_number: str | None = None
    event_id: str | None = None
    writer: str = vm.WRITER_STREAM  # or full-backup, or original-tool (no metadata: time is LastModified)
    removed_by: str | None = None
    delete_marker: str | None = None  # the version id of the delete marker folded into a removal
    image: dict[str, Any] | None = None
    object_key: str = ""  # the name that holds this version
    change_order: tuple[float, int, str, int] | None = None  # VersionMeta.order; None: the original tool's

    @property
    def order(self) -> tuple[float, int, str, int, int, float, str, str]:
        """The format's order of changes (``VersionMeta.order``; the original tool's at ``LastModified``;
        a tenant-change removal before the new tenant's image of the same change: docs/format.md, "One
        history"), then write time, name and version id, only to make the merged order deterministic."""
        change = self.change_order or (self.written, 1, "", 0)
        moved_in = 0 if self.removed_by == vm.REMOVED_BY_TENANT_CHANGE else 1
        return (*change, moved_in, self.written, self.object_key, self.version_id)

    @property
    def lag(self) -> float:
        """Seconds from the change to its write in S3 (S3 keeps write times to the second)."""
        return self.written - self.event_time

    @property
    def is_removal(self) -> bool:
        return self.image is None

    def as_dict(self, *, with_image: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version_id": self.version_id,
            "event": self.event,
            "event_time": vm.epoch_to_iso(self.event_time),
            "sequence_number": self.sequence_number,
            "event_id": self.event_id,
            "written": vm.epoch_to_iso(self.written),
            "lag_seconds": round(self.lag, 3),
            "writer": self.writer,
            "removed_by": self.removed_by,
            "delete_marker": self.delete_marker,
            "changes": self.changes.as_dict(),
            "object_key": self.object_key,
        }
        if with_image:
            data["image"] = self.image
        return data


def object_versions(store: ObjectStore, object_key: str) -> list[VersionEntry]:
    """Every version and delete marker of exactly ``object_key``, oldest first."""
    entries = []
    for entry in store.list_versions(object_key):
        if entry.key != object_key:
            break  # S3 lists keys in order: the object's own key comes first, longer ones after it
        entries.append(entry)
    return entries[::-1]


Belongs = Callable[[str, Mapping[str, Any], "vm.VersionMeta | None"], bool]


def belongs_to_table(resolver: Resolver, key: Mapping[str, Any]) -> Belongs:
    """Whether a version of the item ``key`` holding an image is the table's where it sits
    (``aliases.placement``, with the table's tenant attribute for versions that do not record their
    writer's: ``Resolver.table_tenancy``); another stack's object of the same key is not."""
    item_key = k.canonical_key(key)

    def belongs(object_key: str, image: Mapping[str, Any], meta: vm.VersionMeta | None) -> bool:
        recorded = None if meta is None else meta.tenancy
        table = resolver.table_tenancy().tenancy if recorded is None else None
        where = al.placement(object_key, resolver.folders, item_key, image, resolver.schema, recorded, table)
        return where is not None

    return belongs


def item_history(
    store: ObjectStore, object_keys: str | list[str], *, belongs: Belongs | None = None
) -> list[HistoryEntry]:
    """The item's changes, oldest first. One name: write order (stream order per item). Several names
    (the item's aliases): merged in the format's order of changes, what changed recomputed in that order.
    ``belongs`` (``belongs_to_table``) leaves out versions that are not the table's where they sit."""
    if isinstance(object_keys, str):
        object_keys = [object_keys]
    entries = [e for object_key in object_keys for e in _walk(store, object_versions(store, object_key), belongs)]
    if len(object_keys) == 1:
        return entries
    merged: list[HistoryEntry] = []
    for entry in sorted(entries, key=lambda e: e.order):
        before = merged[-1].image if merged else None
        if entry.writer == ORIGINAL_TOOL:  # its event is told by the item's previous image, under any name
            entry = replace(entry, event=_original_event(entry.image, before))
        merged.append(replace(entry, changes=attribute_changes(before, entry.image)))
    return merged


def _walk(store: ObjectStore, versions: list[VersionEntry], belongs: Belongs | None = None) -> Iterator[HistoryEntry]:
    previous: HistoryEntry | None = None
    halves = removal_halves(versions)
    for index, entry in enumerate(versions):
        if index in halves:
            if previous is not None and previous.is_removal and previous.delete_marker is None:
                previous = _fold_marker(previous, entry)
            continue  # the second half of one of our removals
        current: HistoryEntry | None
        if entry.is_delete_marker:
            current = _original_delete(entry, previous)
        else:
            current = _version(store, entry, previous, belongs)
            if current is None:
                continue  # not an item image: a stray version
        if previous is not None:
            yield previous
        previous = current
    if previous is not None:
        yield previous


def _fold_marker(removal: HistoryEntry, marker: VersionEntry) -> HistoryEntry:
    return replace(removal, delete_marker=marker.version_id)


def _original_delete(entry: VersionEntry, previous: HistoryEntry | None) -> HistoryEntry:
    written = entry.last_modified.timestamp()
    before = previous.image if previous is not None else None
    return HistoryEntry(
        version_id=entry.version_id,
        event=EVENT_NAMES[vm.REMOVE],
        event_time=written,
        written=written,
        changes=attribute_changes(before, None),
        writer=ORIGINAL_TOOL,
        delete_marker=entry.version_id,
        object_key=entry.key,
    )


def _version(
    store: ObjectStore, entry: VersionEntry, previous: HistoryEntry | None, belongs: Belongs | None = None
) -> HistoryEntry | None:
    stored = store.get(entry.key, entry.version_id) if entry.size > 0 else store.head(entry.key, entry.version_id)
    image = None
    if entry.size > 0:
        image, _ = parse_image(stored.body)
        if image is None:
            return None
    try:
        meta = vm.VersionMeta.from_s3(stored.metadata)
    except vm.MetadataError:
        return None
    if image is not None and belongs is not None and not belongs(entry.key, image, meta):
        return None  # not the table's object (another stack's, a stray copy)
    written = entry.last_modified.timestamp()
    before = previous.image if previous is not None else None
    common: dict[str, Any] = {
        "version_id": entry.version_id,
        "written": written,
        "changes": attribute_changes(before, image),
        "image": image,
        "object_key": entry.key,
    }
    if meta is None:
        return HistoryEntry(event=_original_event(image, before), event_time=written, writer=ORIGINAL_TOOL, **common)
    return HistoryEntry(
        event=event_label(meta),
        event_time=meta.event_time,
        sequence_number=meta.sequence_number,
        event_id=meta.event_id,
        writer=meta.writer,
        removed_by=meta.removed_by,
        change_order=meta.order,
        **common,
    )


def event_label(meta: vm.VersionMeta) -> str:
    """insert, modify, remove, ttl (a removal by TTL) or full-backup."""
    if meta.is_removal and meta.removed_by == vm.REMOVED_BY_TTL:
        return TTL
    return EVENT_NAMES.get(meta.event_name, meta.event_name.lower())


def _original_event(image: Mapping[str, Any] | None, before: Mapping[str, Any] | None) -> str:
    if image is None:
        return EVENT_NAMES[vm.REMOVE]
    return EVENT_NAMES[vm.INSERT] if before is None else EVENT_NAMES[vm.MODIFY]


def parse_key(text: str) -> k.TypedItem:
    """``--key``: DynamoDB JSON (``{"pk":{"S":"a"},"sk":{"N":"1"}}``) or plain JSON (``{"pk":"a","sk":1}``),
    one parser for both forms and every command. A number DynamoDB cannot store (39 significant digits, 1E+200) raises
    an ``ArithmeticError`` in either form (``cli.lookup.parse_key_option`` makes it a usage error)."""
    try:
        value = json.loads(text, parse_float=Decimal)
    except ValueError as err:
        raise UserError(f"--key is not JSON: {err}", 'write it like \'{"pk":{"S":"a"},"sk":{"N":"1"}}\'') from err
    if not isinstance(value, dict) or not value:
        raise UserError("--key must be a JSON object of the key attributes", 'e.g. \'{"pk":{"S":"a"}}\'')
    if all(isinstance(v, dict) and len(v) == 1 and next(iter(v)) in k.KEY_TYPES for v in value.values()):
        typed = value
    else:
        serializer = TypeSerializer()
        typed = {name: serializer.serialize(v) for name, v in value.items()}
    key = k.canonical_key(typed)
    for scalar in key.values():  # both forms: DynamoDB's number rule
        if "N" in scalar:
            k.check_number(scalar["N"])
    return key


def locate_item(
    store: ObjectStore,
    prefix: str,
    table: str,
    key: Mapping[str, Any],
    *,
    tenant: str | None = None,
    schema: k.KeySchema | None = None,
) -> str:
    """The item's first object key (ours before the original tool's names), or a UserError."""
    return locate_items(store, prefix, table, key, tenant=tenant, schema=schema)[0]


def locate_items(
    store: ObjectStore,
    prefix: str,
    table: str,
    key: Mapping[str, Any],
    *,
    tenant: str | None = None,
    schema: k.KeySchema | None = None,
) -> list[str]:
    """Every object key holding the item (``locate.candidate_object_keys``: one LIST per name a writer
    gives it), or a UserError saying where it looked."""
    candidates = candidate_object_keys(prefix, table, key, tenant=tenant, schema=schema)
    if tenant is not None:
        candidates += [c for c in _other_tenant_names(store, prefix, table, key, tenant, schema) if c not in candidates]
    found = find_object_keys(store, candidates)
    if not found:
        hint = "check --table, --prefix and --tenant"
        if schema is None and len(key) > 1:
            hint += "; plain-text names need the key schema: let the command reach the table (DescribeTable)"
        raise UserError(f"the backup holds no version of this item (looked at {', '.join(candidates)})", hint)
    return found


def _other_tenant_names(
    store: ObjectStore, prefix: str, table: str, key: Mapping[str, Any], tenant: str, schema: k.KeySchema | None
) -> list[str]:
    """The item's names in the table's other tenant folders (one LIST per folder, then one per name): the
    original tool left an item's old tenant folder as it was when its tenant changed, and that folder
    holds the item's earlier life (docs/format.md, "Buckets written by the original tool")."""
    from ddb_backup.inspect.tables import folders

    own = {tenant, unquote(tenant)}
    names: list[str] = []
    for folder in al.table_folders(prefix, table):
        for other in folders(store, folder):
            if other not in own:
                names += candidate_object_keys(prefix, table, key, tenant=other, schema=schema)
    return list(dict.fromkeys(names))
