"""Keys, canonical numbers, object names and escaping (docs/format.md, "Object names")."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddb_backup.format import keys as k

SCHEMA = k.KeySchema("pk", "sk")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1", "1"),
        ("1.0", "1"),
        ("1E0", "1"),
        ("+1", "1"),
        ("01", "1"),
        ("1.50", "1.5"),
        ("1E+2", "100"),
        ("100", "100"),
        ("-0.0", "0"),
        ("0E-10", "0"),
        ("-1.230e1", "-12.3"),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("1e-130", "0." + "0" * 129 + "1"),
        (" 7 ", "7"),
    ],
)
def test_numbers_in_every_notation_have_one_spelling(text: str, canonical: str) -> None:
    assert k.canonical_number(text) == canonical


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity", "1..2"])
def test_non_numbers_are_refused(bad: str) -> None:
    with pytest.raises(k.InvalidKeyError):
        k.canonical_number(bad)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None))
def test_canonical_number_keeps_the_value(value: Decimal) -> None:
    assert Decimal(k.canonical_number(str(value))) == value


def test_md5_name_is_md5_of_the_sorted_canonical_key() -> None:
    key = {"sk": {"N": "1.0"}, "pk": {"S": "a"}}
    expected = hashlib.md5(b'{"pk":{"S":"a"},"sk":{"N":"1"}}').hexdigest()
    assert k.md5_object_name(key) == expected


def test_same_item_same_name_whatever_the_spelling_or_order() -> None:
    a = {"pk": {"S": "x"}, "sk": {"N": "10"}}
    b = {"sk": {"N": "1E1"}, "pk": {"S": "x"}}
    assert k.md5_object_name(a) == k.md5_object_name(b)
    assert k.plain_text_object_name(a, SCHEMA) == k.plain_text_object_name(b, SCHEMA) == "x | 10"


def test_plain_text_puts_the_hash_key_first() -> None:
    key = {"a_range": {"S": "r"}, "z_hash": {"S": "h"}}
    assert k.plain_text_object_name(key, k.KeySchema("z_hash", "a_range")) == "h | r"
    assert k.plain_text_object_name({"id": {"N": "5.0"}}, k.KeySchema("id")) == "5"


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("../x", "..%2Fx"),
        ("100%", "100%25"),
        ("a b", "a b"),
        ("ünïcode ✓", "ünïcode ✓"),
        ("tab\there", "tab%09here"),
        ("back\\slash", "back%5Cslash"),
        ("nul\x00", "nul%00"),
        ("del\x7f", "del%7F"),
    ],
)
def test_escaping_keeps_one_segment(value: str, escaped: str) -> None:
    assert k.escape_segment(value) == escaped


@given(st.text(min_size=1))
def test_no_value_can_add_or_climb_a_path_level(value: str) -> None:
    segment = k.escape_segment(value)
    assert "/" not in segment and "\\" not in segment
    assert segment not in (".", "..")
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment)
    assert segment != k.MISSING_TENANT_SEGMENT


@given(st.text(min_size=1), st.text(min_size=1))
def test_escaping_is_injective(a: str, b: str) -> None:
    if a != b:
        assert k.escape_segment(a) != k.escape_segment(b)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("", "t/n"), ("/", "t/n"), ("p", "p/t/n"), ("/p/", "p/t/n"), ("a//b/", "a/b/t/n")],
)
def test_object_keys_have_no_leading_or_doubled_slash(prefix: str, expected: str) -> None:
    assert k.object_key_for(prefix, "t", "n") == expected


def test_tenant_segment_and_reserved_missing_tenant() -> None:
    assert k.object_key_for("p", "t", "n", k.tenant_segment({"S": "acme/eu"})) == "p/t/acme%2Feu/n"
    assert k.tenant_segment(None) == k.MISSING_TENANT_SEGMENT
    assert k.tenant_segment({"S": ""}) == k.MISSING_TENANT_SEGMENT
    assert k.tenant_segment({"N": "7.0"}) == "7"


def test_binary_keys_are_named_by_their_base64() -> None:
    assert k.canonical_key({"b": {"B": b"\x00\xff"}}) == {"b": {"B": "AP8="}}
    assert k.canonical_key({"b": {"B": "AP8="}}) == {"b": {"B": "AP8="}}
    with pytest.raises(k.InvalidKeyError):
        k.canonical_key({"b": {"B": "not base64!"}})


def test_keys_that_cannot_be_named_are_refused_clearly() -> None:
    with pytest.raises(k.InvalidKeyError, match="no key attributes"):
        k.canonical_key({})
    with pytest.raises(k.InvalidKeyError, match="S, N or B"):
        k.canonical_key({"m": {"M": {}}})
    with pytest.raises(k.InvalidKeyError, match="missing"):
        k.plain_text_object_name({"pk": {"S": "a"}}, SCHEMA)


@pytest.mark.parametrize("value", [{"S": ""}, {"B": ""}, {"B": b""}])
def test_empty_key_values_are_refused_not_named_like_a_folder(value: dict) -> None:
    # DynamoDB never has empty key values; named as plain text one would be the object "orders/".
    with pytest.raises(k.InvalidKeyError, match="'pk' is empty"):
        k.canonical_key({"pk": value})
    assert k.tenant_segment({"S": ""}) == k.MISSING_TENANT_SEGMENT  # a tenant value may be empty


def test_too_long_plain_text_names_fall_back_to_a_hashed_name() -> None:
    key = {"pk": {"S": "x" * 2000}}
    namer = k.ItemNamer("p", "t", plain_text=True, schema=k.KeySchema("pk"))
    assert namer.object_key(key) == "p/t/%md5-" + k.md5_object_name(key)


@given(
    st.dictionaries(
        st.sampled_from(["pk", "sk"]),
        st.one_of(
            st.builds(lambda s: {"S": s}, st.text(min_size=1)),
            st.builds(lambda n: {"N": str(n)}, st.integers()),
            st.builds(lambda b: {"B": b}, st.binary(min_size=1)),
        ),
        min_size=1,
    )
)
def test_canonical_key_is_idempotent(key: dict) -> None:
    once = k.canonical_key(key)
    assert k.canonical_key(once) == once
    assert k.md5_object_name(once) == k.md5_object_name(key)
    # the JSON computed once (capture: per record) names the item exactly as the key does
    text = k.canonical_key_json(once)
    assert text == k.key_json(key) == k.key_identity(key)
    assert k.md5_object_name(key, text) == k.md5_object_name(key)
    for namer in (k.ItemNamer("p", "t", plain_text=False), k.ItemNamer("p", "t", plain_text=True, schema=SCHEMA)):
        if set(key) == {"pk", "sk"}:
            assert namer.object_key(once, "x", key_json_text=text) == namer.object_key(key, "x")


def test_an_item_is_found_under_either_naming() -> None:
    from ddb_backup.restore.locate import candidate_object_keys, find_object_key
    from ddb_backup.store.memory import MemoryStore

    store = MemoryStore()
    key = {"pk": {"S": "a"}, "sk": {"N": "1.0"}}
    store.put("p/t/a | 1", b"{}", {})
    candidates = candidate_object_keys("p", "t", key, schema=SCHEMA)
    assert candidates[:2] == ["p/t/" + k.md5_object_name(key), "p/t/a | 1"]  # ours first, then other writers'
    assert find_object_key(store, candidates) == "p/t/a | 1"
    assert find_object_key(store, candidate_object_keys("p", "t", {"pk": {"S": "zz"}})) is None
