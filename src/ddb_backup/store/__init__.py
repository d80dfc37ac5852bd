"""The object store: the small interface every backend implements (docs/architecture.md).

Backends know nothing of DynamoDB or of our paths; ``ddb_backup.format.keys`` computes every key.
"""

from ddb_backup.store.base import (
    Fetched,
    NoSuchVersion,
    ObjectStore,
    PreconditionFailed,
    PutResult,
    StoredObject,
    StoreError,
    StoreUnreachable,
    UnversionedWrite,
    VersionEntry,
    list_until,
    require_version,
)

__all__ = [
    "Fetched",
    "NoSuchVersion",
    "ObjectStore",
    "PreconditionFailed",
    "PutResult",
    "StoreError",
    "StoreUnreachable",
    "StoredObject",
    "UnversionedWrite",
    "VersionEntry",
    "list_until",
    "require_version",
]
