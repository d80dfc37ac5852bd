"""Which object keys a writer of a table gives an item (aliases.placement), name forms that end alike."""

from __future__ import annotations

import pytest

from ddb_backup.format import keys as k
from ddb_backup.format.aliases import placement

LONG_KEY = {"pk": {"S": "h" * 2048}, "sk": {"S": "r" * 1024}}
SCHEMA = k.KeySchema("pk", "sk")


@pytest.mark.parametrize("tenant", ["", "acme/", "%none/"])
def test_the_hashed_plain_text_fallback_belongs_to_its_item(tenant: str) -> None:
    # GIVEN an item whose plain-text name is too long, written under the documented fallback %md5-<md5>
    name = k.hashed_object_name(k.canonical_key(LONG_KEY))
    image = {**LONG_KEY, "org": {"S": "acme"}}
    # WHEN a reader asks whether the object belongs to the table
    where = placement(f"orders/{tenant}{name}", ["orders/"], k.canonical_key(LONG_KEY), image, SCHEMA)
    # THEN it does (the fallback ends with the MD5 name, but is not the MD5 name)
    assert where is not None and where.name == name and where.tenant == tenant


def test_a_name_that_merely_ends_with_the_md5_name_does_not_belong() -> None:
    key = k.canonical_key({"pk": {"S": "a"}, "sk": {"S": "b"}})
    forged = "x" + k.md5_object_name(key)
    assert placement(f"orders/{forged}", ["orders/"], key, key, SCHEMA) is None
