"""Object names and keys under every key and tenant DynamoDB accepts (issue 12.6, 12.7;
docs/format.md, "Object names" and "The 1,024-byte rule")."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddb_backup.format import keys as k
from ddb_backup.settings import Settings, SettingsError
from hypothesis_profiles import scaled

HASH_RANGE = k.KeySchema("pk", "sk")
# Derandomised in `make test` (the profile in hypothesis_profiles), random and longer in `make soak`.
PROPERTY = settings(max_examples=scaled(400), deadline=None, suppress_health_check=list(HealthCheck))

# Text that stresses the separator and the escapes: pipes, the separator itself, escapes, dots,
# slashes, digits, unicode of 2 to 4 UTF-8 bytes, controls.
PIECES = ["|", " | ", " ", "%", "%7C", "%2E", "/", "\\", ".", "..", "a", "Z", "0", "é", "✓", "𝄞", "\x00", "-"]
TRICKY = st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join)
LONG_TEXT = st.text(min_size=1, max_size=1500)
S_VALUES = st.one_of(TRICKY, LONG_TEXT, st.text(string.hexdigits.lower(), min_size=32, max_size=32))
N_VALUES = st.one_of(
    st.integers(min_value=-(10**38), max_value=10**38).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
)
B_VALUES = st.binary(min_size=1, max_size=1024)
TYPED = {
    "S": S_VALUES.map(lambda s: {"S": s}),
    "N": N_VALUES.map(lambda n: {"N": n}),
    "B": B_VALUES.map(lambda b: {"B": b}),
}
KEY_VALUES = st.one_of(*TYPED.values())
# A table gives each key attribute one type (its AttributeDefinitions): two keys of one table differ in
# values, never in types.
KEY_TYPES = st.sampled_from(sorted(TYPED))
PREFIXES = st.one_of(st.just(""), st.just("backups"), st.text(st.sampled_from("ab/é✓"), max_size=170))
TABLES = st.one_of(st.just("orders"), st.text(st.sampled_from(string.ascii_letters + "_.-"), min_size=3, max_size=255))
TENANT_VALUES = st.one_of(
    st.none(),
    S_VALUES.map(lambda s: {"S": s}),
    N_VALUES.map(lambda n: {"N": n}),
    B_VALUES.map(lambda b: {"B": b}),
    st.sampled_from([{"NULL": True}, {"BOOL": False}, {"M": {}}, {"L": []}, {"SS": ["a"]}, {"S": ""}]),
)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def namer(plain_text: bool, prefix: str = "p", table: str = "orders") -> k.ItemNamer:
    return k.ItemNamer(prefix, table, plain_text, HASH_RANGE if plain_text else None)


# -- 12.7: plain-text names are one-to-one ---------------------------------------------------------


def test_a_separator_inside_a_value_no_longer_joins_two_items() -> None:
    # GIVEN the two items WHEN named as plain text THEN two objects, each still readable.
    first = k.plain_text_object_name({"pk": {"S": "a | b"}, "sk": {"S": "c"}}, HASH_RANGE)
    second = k.plain_text_object_name({"pk": {"S": "a"}, "sk": {"S": "b | c"}}, HASH_RANGE)
    assert first != second
    assert (first, second) == ("a %7C b | c", "a | b %7C c")


def test_the_md5_fallback_can_never_be_a_plain_text_name() -> None:
    # GIVEN an item too long for a plain-text name, and a second item whose key IS that MD5 in hex
    long_key = {"pk": {"S": "x" * 1100}}
    digest = k.md5_object_name(long_key)
    names = k.ItemNamer("p", "t", True, k.KeySchema("pk"))
    # THEN their objects differ: the fallback is reserved-looking, and no escaped text starts with "%m".
    assert names.object_key(long_key) == f"p/t/%md5-{digest}"
    assert names.object_key({"pk": {"S": digest}}) == f"p/t/{digest}"


@PROPERTY
@given(st.data(), KEY_TYPES, KEY_TYPES, PREFIXES)
def test_plain_text_object_keys_are_one_to_one(
    data: st.DataObject, hash_type: str, range_type: str, prefix: str
) -> None:
    key_a, key_b = ({"pk": data.draw(TYPED[hash_type]), "sk": data.draw(TYPED[range_type])} for _ in range(2))
    how = data.draw(st.sampled_from(["independent", "same hash", "separator moved"]))
    if how == "same hash":  # the range value alone must tell them apart
        key_b["pk"] = key_a["pk"]
    elif how == "separator moved" and hash_type == range_type == "S":  # the shape
        x, y, z = (data.draw(TRICKY) for _ in range(3))
        key_a = {"pk": {"S": f"{x} | {y}"}, "sk": {"S": z}}
        key_b = {"pk": {"S": x}, "sk": {"S": f"{y} | {z}"}}
    names = namer(True, prefix)
    if k.canonical_key(key_a) == k.canonical_key(key_b):
        assert names.object_key(key_a) == names.object_key(key_b)
    else:
        assert names.object_key(key_a) != names.object_key(key_b)


@PROPERTY
@given(
    KEY_TYPES.flatmap(
        lambda t: st.lists(TYPED[t], min_size=2, max_size=2, unique_by=lambda v: str(k.canonical_key({"h": v})))
    )
)
def test_hash_only_plain_text_names_are_one_to_one(values: list[Any]) -> None:
    names = k.ItemNamer("", "t", True, k.KeySchema("h"))
    first, second = ({"h": value} for value in values)
    assert names.object_key(first) != names.object_key(second)


def test_a_name_made_of_dots_still_cannot_climb() -> None:
    schema = k.KeySchema("h")
    assert k.plain_text_object_name({"h": {"S": ".."}}, schema) == "%2E%2E"
    assert k.plain_text_object_name({"h": {"S": "%2E%2E"}}, schema) == "%252E%252E"


# -- 12.6: every object key is at most 1,024 bytes -------------------------------------------------


@pytest.mark.parametrize("plain_text", [False, True])
def test_a_1100_character_tenant_gives_a_key_within_s3s_limit(plain_text: bool) -> None:
    tenant = k.tenant_segment({"S": "t" * 1100})
    object_key = namer(plain_text).object_key({"pk": {"S": "a"}, "sk": {"N": "1"}}, tenant)
    assert utf8_len(object_key) <= k.MAX_OBJECT_KEY_BYTES
    assert tenant == "%md5-" + k.md5_hex("t" * 1100)


def test_a_hashed_tenant_cannot_be_an_escaped_value_nor_the_missing_tenant() -> None:
    hashed = k.tenant_segment({"S": "é" * 200})
    assert hashed.startswith("%md5-") and hashed != k.MISSING_TENANT_SEGMENT
    assert k.tenant_segment({"S": hashed}) != hashed  # a value that looks hashed is escaped
    assert k.tenant_segment({"S": "é" * 100}) == "é" * 100  # 200 bytes: still plain


@PROPERTY
@given(KEY_VALUES, KEY_VALUES, TENANT_VALUES, PREFIXES, TABLES, st.booleans())
def test_every_key_fits_in_every_mode_with_any_tenant_and_prefix(
    hash_value: Any, range_value: Any, tenant: Any, prefix: str, table: str, plain_text: bool
) -> None:
    if utf8_len(prefix) > k.MAX_PREFIX_BYTES or set(table) == {"."}:
        return  # refused by the settings; dots-only table names have their own test
    segment = k.tenant_segment(tenant)
    object_key = namer(plain_text, prefix, table).object_key({"pk": hash_value, "sk": range_value}, segment)
    assert utf8_len(object_key) <= k.MAX_OBJECT_KEY_BYTES
    assert "//" not in object_key and not object_key.startswith("/")


def test_the_longest_prefix_and_table_still_fit_with_the_longest_tenant() -> None:
    prefix, table = "é" * (k.MAX_PREFIX_BYTES // 2), "T" * 255
    tenant = k.tenant_segment({"S": "x" * k.MAX_TENANT_SEGMENT_BYTES})
    for plain_text in (False, True):
        key = namer(plain_text, prefix, table).object_key({"pk": {"S": "y" * 2048}, "sk": {"S": "z" * 1024}}, tenant)
        assert utf8_len(key) <= k.MAX_OBJECT_KEY_BYTES


def test_a_too_long_prefix_is_refused_at_settings_validation() -> None:
    with pytest.raises(SettingsError, match=r"BackupPrefix.*at most 512 bytes"):
        Settings.from_env({"BackupBucket": "b", "BackupPrefix": "p" * 513})
    assert Settings.from_env({"BackupBucket": "b", "BackupPrefix": "é" * 256}).prefix == "é" * 256


def test_a_folder_too_long_for_any_name_fails_clearly_without_values() -> None:
    # A dots-only table name is escaped three bytes a dot: with a long prefix nothing fits.
    names = k.ItemNamer("p" * 500, "." * 200, False)
    with pytest.raises(k.KeyTooLongError, match="BackupPrefix") as caught:
        names.object_key({"pk": {"S": "secret-value"}})
    assert "secret-value" not in str(caught.value)
    with pytest.raises(k.KeyTooLongError, match="BackupPrefix"):
        k.check_key_room("p" * 500, "." * 200, tenants=False)
    k.check_key_room("p" * 500, "orders", tenants=True)


# -- 12.5: a tenant of any type names one documented folder ----------------------------------------


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ({"S": "acme/eu"}, "acme%2Feu"),
        ({"S": "a | b"}, "a | b"),
        ({"N": "7.0"}, "7"),
        ({"B": "AP8/"}, "AP8%2F"),
        ({"B": b"\x00\xff"}, "AP8="),
        ({"S": ""}, "%none"),
        ({"B": ""}, "%none"),
        ({"B": b""}, "%none"),
        ({"NULL": True}, "%none"),
        ({"BOOL": True}, "%none"),
        ({"BOOL": False}, "%none"),
        ({"M": {"a": {"S": "x"}}}, "%none"),
        ({"L": [{"S": "x"}]}, "%none"),
        ({"SS": ["x", "y"]}, "%none"),
        ({"NS": ["1"]}, "%none"),
        ({"BS": ["AP8="]}, "%none"),
        (None, "%none"),
        ({"N": "not a number"}, "%none"),
        ({"B": "not base64!"}, "%none"),
        ("not typed", "%none"),
    ],
)
def test_every_tenant_type_follows_one_policy(value: Any, segment: str) -> None:
    assert k.tenant_segment(value) == segment
    assert k.is_missing_tenant(value) == (segment == k.MISSING_TENANT_SEGMENT)


def test_a_tenant_given_on_the_command_line_finds_its_folder() -> None:
    from ddb_backup.cli.lookup import tenant_segment

    long_tenant = "t" * 1100
    assert tenant_segment(long_tenant) == k.tenant_segment({"S": long_tenant})
    assert tenant_segment("7") == k.tenant_segment({"N": "7"})
    assert tenant_segment("%none") == "%none"


# -- what readers of a version 1 bucket must alias -------------------------------------------------


def test_the_names_an_item_may_have_include_version_1_forms() -> None:
    key = {"pk": {"S": "a | b"}, "sk": {"S": "c"}}
    names = k.object_names_of(key, HASH_RANGE)
    assert names[:2] == [k.md5_object_name(key), "a %7C b | c"]
    assert "a | b | c" in names  # format 1 kept "|" as it was
    long_key = {"pk": {"S": "x" * 1100}, "sk": {"S": "c"}}
    assert f"%md5-{k.md5_object_name(long_key)}" in k.object_names_of(long_key, HASH_RANGE)


def test_an_item_written_under_a_format_1_name_is_still_found_by_its_key() -> None:
    from ddb_backup.restore.locate import candidate_object_keys, find_object_key
    from ddb_backup.store.memory import MemoryStore

    store = MemoryStore()
    store.put("p/t/a | b | c", b"{}", {})  # format 1's name of ('a | b', 'c')
    candidates = candidate_object_keys("p", "t", {"pk": {"S": "a | b"}, "sk": {"S": "c"}}, schema=HASH_RANGE)
    assert candidates[1] == "p/t/a %7C b | c"
    assert find_object_key(store, candidates) == "p/t/a | b | c"


def test_a_tenant_whose_value_looks_reserved_gets_its_own_folder() -> None:
    hashed = "%md5-" + "0" * 32
    # A writer escapes the value, so it never joins the missing tenants or a hashed folder ...
    assert k.tenant_segment({"S": "%none"}) == "%25none"
    assert k.tenant_segment({"S": hashed}) == "%25md5-" + "0" * 32
    # ... while --tenant takes the reserved segments as `tables` shows them.
    assert k.tenant_segment_for_text("%none") == "%none"
    assert k.tenant_segment_for_text(hashed) == hashed
    assert k.tenant_segment_for_text("acme/eu") == "acme%2Feu"
    assert k.tenant_segment_for_text("") == "%none"
