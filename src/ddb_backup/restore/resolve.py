"""From one object's state at T to the item's: belonging, stray objects, and items held under several names.

The planner decides each object on its own (``timeline.state_at``). For an object present at T, the
resolver reads its chosen version (the GET a restore makes anyway) and decides what the reader does:

- **skip** it when it is not an item of this table: a body that is not an item image (not JSON, a JSON
  list, a JSON object whose values are not typed DynamoDB values, no key attributes), or a name that no
  writer of this table gives the item the body describes (``aliases.placement``: another stack's object
  under the same folder). Skips are counted by reason, with a few examples, and never raise;
- **take** it when the object is ours under our canonical name (the common case: no other request);
- otherwise (a version of the original tool, or one of the item's other names) **merge** the item's
  history over all its names (``aliases.alias_object_keys``: one LIST per other name that the table's
  folders can hold, one HEAD per other name whose state at T was decided without reading metadata) and
  take the item only when the change in effect at T is this object's own: every name of one item
  reaches the same decision, so exactly one of them yields the item (or none, when it was removed).

Memory: only the versions of the item being resolved are held (its names' listings), so the cost per
aliased item is its versions under every name, released once it is decided.
Limit: an object that is ours under our canonical name is not merged (that would cost one LIST per
other name on every item). After a rollback to the original tool, a change the original tool made to an
item ddb-backup had left present is therefore not seen from that item's canonical object; a
``full-backup`` once ddb-backup runs again writes the item's state and ends the conflict.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ddb_backup.format import aliases as al
from ddb_backup.format import keys as k
from ddb_backup.format.table_schema import load_schema
from ddb_backup.format.version_meta import REMOVED_BY_TENANT_CHANGE, MetadataError, Tenancy, VersionMeta
from ddb_backup.restore.plan import metadata_reader
from ddb_backup.restore.tenancy import TableTenancy, learn_table_tenancy
from ddb_backup.restore.timeline import ItemState, state_at
from ddb_backup.store import Fetched, NoSuchVersion, ObjectStore, StoredObject, StoreError, VersionEntry

_MD5_NAME = re.compile(r"[0-9a-f]{32}")
PROBE_KEYS = 50
MAX_EXAMPLES = 5

TAKE, ELSEWHERE, SKIP, REJECT = "take", "elsewhere", "skip", "reject"
NOT_JSON = "not JSON"
NOT_IMAGE = "not an item image"
NO_KEY = "no key attributes of the table"
FOREIGN = "a name no writer of this table gives the item its body holds"
EMPTY_STRAY = "an empty object at a name no writer of this table gives any item"


@dataclass(frozen=True)
class Resolution:
    """What a reader does with one object present at T."""

    kind: str  # take: the item's image at T; elsewhere: another name holds the item's state; skip: not an item
    object_key: str
    image: dict[str, Any] | None = None
    key: dict[str, Any] | None = None
    legacy: bool = False  # the image is a version of the original tool (time: its LastModified)
    reason: str = ""
    event_time: float | None = None  # of the image taken: its event time, or LastModified (original tool)


@dataclass
class Skips:
    """Objects skipped, by reason, with the first few object keys of each (bounded)."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, reason: str, object_key: str) -> None:
        with self._lock:
            self.counts[reason] += 1
            shown = self.examples.setdefault(reason, [])
            if len(shown) < MAX_EXAMPLES:
                shown.append(object_key)

    def merge(self, skipped: Mapping[str, Any]) -> None:
        """Add another process's skips (``as_dict()``), examples kept to the bound."""
        with self._lock:
            for reason, info in skipped.items():
                self.counts[reason] += info["objects"]
                shown = self.examples.setdefault(reason, [])
                shown += info["examples"][: MAX_EXAMPLES - len(shown)]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        """``skipped N objects: reason (e.g. key, key)`` per reason, most frequent first."""
        return [
            f"skipped {count} object{'s' if count != 1 else ''}: {reason} (e.g. {', '.join(self.examples[reason])})"
            for reason, count in self.counts.most_common()
        ]

    def as_dict(self) -> dict[str, Any]:
        return {reason: {"objects": n, "examples": self.examples[reason]} for reason, n in self.counts.items()}


def skipped_lines(skipped: Mapping[str, Any]) -> list[str]:
    """``Skips.as_dict()`` (as reports carry it) as the lines ``Skips.lines`` prints."""
    return [
        f"skipped {info['objects']} object{'s' if info['objects'] != 1 else ''}: {reason} "
        f"(e.g. {', '.join(info['examples'])})"
        for reason, info in sorted(skipped.items(), key=lambda item: -item[1]["objects"])
    ]


_JSON_NAMES = {
    dict: "a JSON object",
    list: "a JSON list",
    str: "a JSON string",
    int: "a JSON number",
    float: "a JSON number",
    bool: "a JSON boolean",
}
_SCALARS = {"S", "N", "B"}
_SETS = {"SS", "NS", "BS"}


def json_kind(value: Any) -> str:
    """A JSON value's kind in JSON's words (``a JSON list``, ``JSON null``), never Python's."""
    return "JSON null" if value is None else _JSON_NAMES.get(type(value), "a JSON value")


def is_typed_value(value: Any) -> bool:
    """A DynamoDB JSON value: one type tag and a value of the JSON kind that tag takes (S, N and B a
    string; BOOL a boolean; NULL true; M an object and L a list of such values; SS, NS and BS a list of
    strings). Strings are not parsed further: the target refuses a malformed number itself."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((tag, inner),) = value.items()
    if tag in _SCALARS:
        return isinstance(inner, str)
    if tag in _SETS:
        return isinstance(inner, list) and all(isinstance(element, str) for element in inner)
    if tag == "BOOL":
        return isinstance(inner, bool)
    if tag == "NULL":
        return inner is True
    if tag == "M":
        return isinstance(inner, dict) and all(is_typed_value(v) for v in inner.values())
    if tag == "L":
        return isinstance(inner, list) and all(is_typed_value(v) for v in inner)
    return False


def parse_image(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """The item image in a version's body, or ``(None, reason)``: not JSON, a JSON value that is not an
    object, or an object whose values are not all typed DynamoDB values (docs/format.md, "Which objects a
    reader takes as a table's")."""
    try:
        image = json.loads(body)
    except (ValueError, RecursionError):
        return None, NOT_JSON
    if not isinstance(image, dict):
        return None, f"{NOT_IMAGE} ({json_kind(image)})"
    if not image:
        return None, f"{NOT_IMAGE} (an empty object)"
    if not all(is_typed_value(v) for v in image.values()):
        return None, f"{NOT_IMAGE} (values are not typed DynamoDB values)"
    return image, ""


class Resolver:
    """Decides objects of one table (``prefix``, ``table``) for readers; thread-safe."""

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        table: str,
        schema: k.KeySchema | None = None,
        *,
        keyless_as_reject: bool = False,
        tenancy: Tenancy | None = None,
        saved_schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.store, self.prefix, self.table, self.schema = store, prefix, table, schema
        # the table's tenant attribute as the command line gives it (None: not given; see table_tenancy)
        self.tenancy, self._saved_schema = tenancy, saved_schema
        self._table_tenancy: TableTenancy | None = None
        self._tenancy_lock = threading.Lock()
        # restore sets it: an image without the key attributes goes to its rejects file, not to the skips
        self.keyless_as_reject = keyless_as_reject
        self.folders = al.table_folders(prefix, table)
        self.skips = Skips()
        self.alias_reads = 0  # LIST and HEAD requests spent merging names
        self._lock = threading.Lock()
        self._present_folders: list[str] | None = None
        self._shapes: set[str] | None = None
        self._tenants: dict[str, list[str]] = {}
        self._read = metadata_reader(store)

    # -- the table's folders, looked at once ------------------------------------------------------

    def present_folders(self) -> list[str]:
        """The table's folders that hold anything (one LIST each, once): only those can hold other names."""
        with self._lock:
            if self._present_folders is None:
                self._present_folders = [folder for folder in self.folders if self._holds(folder)]
            return self._present_folders

    def _holds(self, folder: str) -> bool:
        return next(iter(self.store.list_versions(folder)), None) is not None

    def shapes(self) -> set[str]:
        """Which name shapes the folders hold (``md5``, ``text``): a probe of each folder's first keys."""
        folders = self.present_folders()
        with self._lock:
            if self._shapes is None:
                shapes = set()
                for folder in folders:
                    for entry in itertools.islice(self.store.list_versions(folder), PROBE_KEYS):
                        name = entry.key[len(folder) :].rsplit("/", 1)[-1]
                        shapes.add("md5" if _MD5_NAME.fullmatch(name) else "text")
                self._shapes = shapes
            return self._shapes

    def tenant_parts(self, folder: str) -> list[str]:
        """The tenant folders (``"tenant/"``) right under one table folder (one LIST per folder)."""
        from ddb_backup.inspect.tables import folders as subfolders

        with self._lock:
            if folder not in self._tenants:
                self._tenants[folder] = [name + "/" for name in subfolders(self.store, folder)]
            return self._tenants[folder]

    def table_tenancy(self) -> TableTenancy:
        """The table's tenant attribute, for versions that do not record their writer's
        (``tenancy.learn_table_tenancy``: the option, the saved schema, our versions), learnt once."""
        with self._tenancy_lock:
            if self._table_tenancy is None:
                saved = self._saved_schema
                if saved is None and self.tenancy is None:
                    try:
                        saved = load_schema(self.store, self.prefix, self.table)
                    except ValueError:
                        saved = None  # not JSON: says nothing
                self._table_tenancy = learn_table_tenancy(
                    self.store, self.folders, self.schema, explicit=self.tenancy, saved=saved
                )
            return self._table_tenancy

    def _table_rule(self, meta: VersionMeta | None) -> Tenancy | None:
        """The table's tenant attribute when the version does not record its writer's (else not needed)."""
        return self.table_tenancy().tenancy if meta is None or meta.tenancy is None else None

    # -- one object ---------------------------------------------------------------------------------

    def resolve(
        self, state: ItemState, at: float, *, max_lag: float | None = None, fetched: Fetched | None = None
    ) -> Resolution:
        """The reader's decision for an object present at ``at`` (``state`` from the planner); its version
        read here, or as ``fetched`` gives it (a GET already made)."""
        assert state.version is not None
        try:
            stored = self._version(state.object_key, state.version.version_id, fetched)
        except NoSuchVersion:
            return Resolution(ELSEWHERE, state.object_key, reason="the version is gone since listing")
        return self.resolve_stored(state, stored, at, max_lag=max_lag)

    def _version(self, object_key: str, version_id: str, fetched: Fetched | None) -> StoredObject:
        """One version: ``fetched()`` when given; if that failed otherwise than "no such version" (the
        native client's own retries are spent), read again through the store and its retries."""
        if fetched is not None:
            try:
                return fetched()
            except NoSuchVersion:
                raise
            except StoreError:
                pass
        return self.store.get(object_key, version_id)

    def resolve_stored(
        self, state: ItemState, stored: StoredObject, at: float, *, max_lag: float | None = None
    ) -> Resolution:
        found = self.inspect(state.object_key, stored)
        if isinstance(found, Resolution):
            return found
        event_time = found.stored.last_modified.timestamp() if found.meta is None else found.meta.event_time
        if found.canonical:
            return Resolution(TAKE, state.object_key, found.image, found.key, event_time=event_time)
        winner = self.winner(found, state, at, max_lag=max_lag)
        if winner is not None and winner.object_key == state.object_key:
            legacy = found.meta is None
            return Resolution(TAKE, state.object_key, found.image, found.key, legacy=legacy, event_time=event_time)
        held = "removed" if winner is None or not winner.present else f"held by {winner.object_key}"
        return Resolution(ELSEWHERE, state.object_key, key=found.key, reason=held)

    def note_absent(self, state: ItemState) -> None:
        """Report an object absent at T whose name no writer gives any item of the table (a folder
        marker ``orders/sub/``, or, for a two-attribute key, a name that is neither an MD5 name nor holds
        ``" | "``): an empty stray, not a removal. Decided from its name alone, no request."""
        if self.is_foreign_name(state.object_key):
            self.skips.add(EMPTY_STRAY, state.object_key)

    def is_foreign_name(self, object_key: str) -> bool:
        """No writer of this table names any item ``object_key`` (docs/format.md)."""
        if object_key.endswith("/"):
            return True  # names are never empty
        folder = next((f for f in self.folders if object_key.startswith(f)), None)
        if folder is None or self.schema is None or self.schema.range_key is None:
            return False
        relative = object_key[len(folder) :]
        name = relative.rsplit("/", 1)[-1]
        if _MD5_NAME.fullmatch(name) or _MD5_NAME.fullmatch(name.removeprefix(k.HASHED_SEGMENT_PREFIX)):
            return False
        return " | " not in relative

    def inspect(self, object_key: str, stored: StoredObject) -> Inspected | Resolution:
        """What one version's body and metadata say about its object: the item it holds and how it is
        named, or a ``skip`` Resolution (counted in ``skips``)."""
        image, why = parse_image(stored.body)
        if image is None:
            return self._skip(why, object_key)
        try:
            meta = VersionMeta.from_s3(stored.metadata)
        except MetadataError:
            meta = None
        key = self._key(image, meta, object_key)
        if key is None:
            if self.keyless_as_reject:
                return Resolution(REJECT, object_key, image=image, reason=NO_KEY)
            return self._skip(NO_KEY, object_key)
        recorded = None if meta is None else meta.tenancy
        where = al.placement(object_key, self.folders, key, image, self.schema, recorded, self._table_rule(meta))
        if where is None:
            return self._skip(FOREIGN, object_key)
        canonical = meta is not None and self._canonical(where, key)
        return Inspected(object_key, stored, image, meta, key, where, canonical)

    def _skip(self, reason: str, object_key: str) -> Resolution:
        self.skips.add(reason, object_key)
        return Resolution(SKIP, object_key, reason=reason)

    def _key(self, image: Mapping[str, Any], meta: VersionMeta | None, object_key: str) -> dict[str, Any] | None:
        try:
            if self.schema is not None:
                names = self.schema.attribute_names
                if not all(name in image for name in names):
                    return None
                return k.canonical_key({name: image[name] for name in names})
            if meta is not None and meta.key:
                return k.canonical_key(meta.key)
            return infer_key(image, object_key, self.folders)
        except k.InvalidKeyError:
            return None

    def _canonical(self, where: al.Placement, key: Mapping[str, Any]) -> bool:
        if where.folder != self.folders[0]:
            return False
        if where.name == k.md5_object_name(key):
            return True
        return self.schema is not None and where.name in k.object_names_of(key, self.schema)[1:3]

    # -- merging an item's names --------------------------------------------------------------------

    def _candidates(self, where: al.Placement, key: Mapping[str, Any], legacy: bool) -> list[str]:
        folders = self.present_folders()
        shapes = self.shapes()
        others: list[str] = []
        if legacy and where.tenant:
            # The original tool left an item's old tenant folder as it was: look in every tenant folder.
            others = [t for folder in folders for t in self.tenant_parts(folder)]
        candidates = []
        for candidate in al.alias_object_keys(where, folders, key, self.schema, other_tenants=others):
            name = candidate.rsplit("/", 1)[-1]
            shape = "md5" if _MD5_NAME.fullmatch(name) else "text"
            if shape in shapes:
                candidates.append(candidate)
        return candidates

    def other_names(self, found: Inspected, *, every_tenant: bool = False) -> list[str]:
        """The other object keys that may hold the item's versions (the ones ``winner`` looks at); with
        ``every_tenant``, in every tenant folder (as for a version of the original tool)."""
        return self._candidates(found.where, found.key, every_tenant or found.meta is None)

    def winner(self, found: Inspected, own: ItemState, at: float, *, max_lag: float | None = None) -> Change | None:
        """The change in effect at ``at`` over all the item's names (``own``: this object's state at
        ``at``), or None when no name has a change at or before ``at``."""
        best = self._own_change(found, own)
        if found.canonical and best is not None and best.present:
            return best
        canonical = self._canonical_keys(found)
        for candidate in self._candidates(found.where, found.key, found.meta is None):
            change = self.change_at(candidate, at, max_lag)
            if change is None:
                continue
            if candidate in canonical and change.present and change.meta is not None:
                return change  # our canonical object, present at T on its own, takes the item (see module doc)
            if best is None or change.order > best.order:
                best = change
        return best

    def canonical_present(self, found: Inspected, at: float, *, max_lag: float | None = None) -> bool:
        """Whether the item's canonical object (ours, when ``found`` is another of its names) is present at
        ``at`` with a version of ours: it then speaks for the item (one LIST per canonical name)."""
        for candidate in sorted(self._canonical_keys(found) - {found.object_key}):
            change = self.change_at(candidate, at, max_lag)
            if change is not None and change.present and change.meta is not None:
                return True
        return False

    def _canonical_keys(self, found: Inspected) -> set[str]:
        tenant = found.where.tenant
        tenants = {tenant, k.tenant_segment_for_text(tenant[:-1]) + "/"} if tenant else {""}
        names = set(k.object_names_of(found.key, self.schema)[:3])  # MD5, plain text, its hashed fallback
        return {self.folders[0] + t + name for t in tenants for name in names}

    def inspect_removal(self, object_key: str, entry: VersionEntry) -> Inspected | None:
        """An object absent at T whose change in effect is one of our tombstones: the item its metadata
        names (one HEAD), or None (a delete marker, or no key in the metadata)."""
        if entry.is_delete_marker:
            return None
        try:
            stored = self.store.head(object_key, entry.version_id)
            meta = VersionMeta.from_s3(stored.metadata)
        except (NoSuchVersion, MetadataError):
            return None
        if meta is None or not meta.key:
            return None
        try:
            key = k.canonical_key(meta.key)
        except k.InvalidKeyError:
            return None
        where = al.placement(object_key, self.folders, key, None, self.schema, meta.tenancy, self._table_rule(meta))
        if where is None:
            return None
        return Inspected(object_key, stored, {}, meta, key, where, self._canonical(where, key))

    def _own_change(self, found: Inspected, own: ItemState) -> Change | None:
        entry = own.decided_by
        if entry is None:
            return None
        if entry.version_id == found.stored.version_id:
            return Change(entry, found.meta, found.object_key)
        return self._change(entry, own.decided_meta, own.legacy, found.object_key)

    def change_at(self, object_key: str, at: float, max_lag: float | None = None) -> Change | None:
        """The change in effect at ``at`` under one name (one LIST; a HEAD when its time is not known)."""
        versions = _exact_versions(self.store, object_key)
        with self._lock:
            self.alias_reads += 1
        if not versions:
            return None
        kwargs = {} if max_lag is None else {"max_lag": max_lag}
        decided = state_at(versions, at, self._read, **kwargs)
        if decided.decided_by is None:
            return None
        return self._change(decided.decided_by, decided.decided_meta, decided.legacy, object_key)

    def _change(self, entry: VersionEntry, meta: VersionMeta | None, legacy: bool, object_key: str) -> Change:
        if meta is None and not entry.is_delete_marker and not legacy:
            meta = self._read(entry)
            with self._lock:
                self.alias_reads += 1
        return Change(entry, meta, object_key)

    def item_change(self, key: Mapping[str, Any], tenant: str | None, at: float) -> Change | None:
        """The item's change in effect at ``at`` over every name it can have (``locate``: one LIST each):
        our canonical object when it is present with a version of ours, else the latest by the format's
        order. ``tenant`` is the escaped tenant segment, if any."""
        from ddb_backup.restore.locate import candidate_object_keys

        canonical = set(candidate_object_keys(self.prefix, self.table, key, tenant=tenant, schema=self.schema)[:2])
        best: Change | None = None
        for candidate in candidate_object_keys(self.prefix, self.table, key, tenant=tenant, schema=self.schema):
            change = self.change_at(candidate, at)
            if change is None:
                continue
            if candidate in canonical and change.present and change.meta is not None:
                return change
            if best is None or change.order > best.order:
                best = change
        return best

    def image_of(self, change: Change | None) -> dict[str, Any] | None:
        """The image a change holds (None: a removal, or a body that is not an item image)."""
        if change is None or not change.present:
            return None
        try:
            stored = self.store.get(change.object_key, change.entry.version_id)
        except NoSuchVersion:
            return None
        return parse_image(stored.body)[0]


@dataclass(frozen=True)
class Inspected:
    """One object read through one of its versions: the item it holds and where that puts it."""

    object_key: str
    stored: StoredObject
    image: dict[str, Any]
    meta: VersionMeta | None
    key: dict[str, Any]
    where: al.Placement
    canonical: bool  # ours, under our canonical name in our folder: not merged with other names


@dataclass(frozen=True)
class Change:
    """The change in effect at T under one name, ordered across names by the format's rules."""

    entry: VersionEntry
    meta: VersionMeta | None
    object_key: str

    @property
    def present(self) -> bool:
        return not self.entry.is_delete_marker and self.entry.size > 0

    @property
    def order(self) -> tuple[float, int, str, int, int, float, str, str]:
        """``VersionMeta.order`` (the format's order of changes; a version or delete marker of the original
        tool at its ``LastModified``; a tenant-change removal before the new tenant's image of the same
        change), then write time, name and version id: only to be deterministic."""
        written = self.entry.last_modified.timestamp()
        change = (written, 1, "", 0) if self.meta is None else self.meta.order
        moved_in = 0 if self.meta is not None and self.meta.removed_by == REMOVED_BY_TENANT_CHANGE else 1
        return (*change, moved_in, written, self.object_key, self.entry.version_id)


def _exact_versions(store: ObjectStore, object_key: str) -> list[VersionEntry]:
    entries = []
    for entry in store.list_versions(object_key):
        if entry.key != object_key:
            break
        entries.append(entry)
    return entries[::-1]


def infer_key(image: Mapping[str, Any], object_key: str, folders: list[str]) -> dict[str, Any] | None:
    """The item's key when no schema is known: the one or two scalar attributes of the image of which
    the object's name is a writer's name (what its own body describes), or None. When several fit, the
    one whose name covers most of the key wins (the original tool's unescaped ``2026/01/01 | u/1`` also
    ends with the name ``u/1`` of another attribute), then fewer attributes, then attribute order."""
    name = object_key.rsplit("/", 1)[-1]
    relative = next((object_key[len(f) :] for f in folders if object_key.startswith(f)), name)
    scalars = sorted(
        a for a, v in image.items() if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in k.KEY_TYPES
    )
    best: tuple[int, dict[str, Any]] | None = None
    for size in (1, 2):
        for names in itertools.combinations(scalars, size):
            try:
                key = k.canonical_key({a: image[a] for a in names})
            except k.InvalidKeyError:
                continue
            fits = [w for w in al.item_names(key) if w in (name, relative) or relative.endswith("/" + w)]
            covered = max((len(w) for w in fits), default=0)
            if fits and (best is None or covered > best[0]):
                best = (covered, key)
    return None if best is None else best[1]


def resolver_for(
    store: ObjectStore, prefix: str, table: str, schema: k.KeySchema | None = None, tenancy: Tenancy | None = None
) -> Resolver:
    """A resolver with the table's key schema: given, else the one a full backup saved, else none (keys
    are then read from our metadata or inferred from the names: ``infer_key``). ``tenancy``: the table's
    tenant attribute as the command line gives it (``--tenant-column``/``--no-tenants``), if at all."""
    saved = None
    if schema is None:
        saved = load_schema(store, prefix, table)
        try:
            schema = None if saved is None else k.KeySchema.from_describe_table(saved)
        except (KeyError, TypeError):
            schema = None  # a saved schema that cannot be read: keys are found as without one
    # the saved schema was read (or found missing) here already: the resolver need not read it again
    saved_schema = None if schema is not None and saved is None else (saved or {})
    return Resolver(store, prefix, table, schema, tenancy=tenancy, saved_schema=saved_schema)
