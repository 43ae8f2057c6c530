"""Keys: validation, tenant isolation and injectivity, fuzzed with hypothesis."""

from __future__ import annotations

import fnmatch
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execctx_nb import InvalidKeyError, InvalidTenantError, keys

tenants = st.from_regex(r"\A[a-zA-Z0-9_-]{1,64}\Z")
# Anything at all, separators, glob characters, unicode and huge strings included.
any_ids = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=":/\\{}[]*?. \t\n\x00", max_size=6),
    st.text(min_size=190, max_size=260),
)


def _valid(value: str) -> bool:
    try:
        keys.validate_id(value)
    except InvalidKeyError:
        return False
    return True


# Valid ids built directly (filtering random text would discard nearly everything), with a
# tiny alphabet in the mix so that near-collisions ("a.b" vs "a", "b") actually happen.
valid_ids = st.one_of(
    st.text(alphabet="ab.-_", min_size=1, max_size=4),
    st.text(
        alphabet=st.characters(
            exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"),
            exclude_characters=":/\\{}[]*?\"'",
        ),
        min_size=1,
        max_size=60,
    ),
).filter(_valid)  # drops ".", "..", blank fillers and over-long UTF-8


@given(st.text(max_size=80))
def test_tenant_validation_matches_the_pattern(tenant: str) -> None:
    ok = keys._TENANT_RE.fullmatch(tenant) is not None
    if ok:
        assert keys.validate_tenant(tenant) == tenant
    else:
        with pytest.raises(InvalidTenantError, match="expected a string matching"):
            keys.step_key(tenant, "run", "step")


@given(any_ids)
def test_valid_ids_never_hold_separators_or_globs(value: str) -> None:
    if not _valid(value):
        return
    assert value and len(value) <= keys.MAX_ID_LENGTH
    assert not set(value) & set(":/\\{}[]*?")
    assert value not in {".", ".."}
    assert all(unicodedata.category(c)[0] not in "CZ" for c in value)


@settings(max_examples=300)
@given(tenants, valid_ids, valid_ids, tenants, valid_ids, valid_ids)
def test_distinct_ids_never_share_a_key(
    t1: str, e1: str, s1: str, t2: str, e2: str, s2: str
) -> None:
    a, b = (t1, e1, s1), (t2, e2, s2)
    builders = [
        lambda t, e, s: keys.step_key(t, e, s),
        lambda t, e, s: keys.step_attempts_key(t, e, s),
        lambda t, e, s: keys.cold_step_path(t, e, s),
        lambda t, e, s: keys.cold_archive_path(t, s, e),
        lambda t, e, s: keys.cold_step_data_path(t, e, s, 0, "0" * 64),
    ]
    for build in builders:
        assert (build(*a) == build(*b)) == (a == b)
    assert keys.parse_step_key(keys.step_key(*a)) == a


@settings(max_examples=300)
@given(tenants, tenants, valid_ids, valid_ids)
def test_no_key_reaches_into_another_tenant(t1: str, t2: str, execution: str, step: str) -> None:
    key = keys.step_key(t1, execution, step)
    path = keys.cold_step_path(t1, execution, step)
    for other in {t2, t1 + "x"} - {t1}:
        assert not fnmatch.fnmatchcase(key, keys.tenant_pattern(other))
        assert not key.startswith(keys.tenant_prefix(other))
        assert not path.startswith(keys.cold_tenant_prefix(other))
        assert keys.mongo_db_name(other) != keys.mongo_db_name(t1)
    assert fnmatch.fnmatchcase(key, keys.tenant_pattern(t1))
    assert fnmatch.fnmatchcase(key, keys.steps_pattern(t1, execution))
    assert keys.parse_execution_key(key, t1) == execution


@given(tenants, valid_ids, valid_ids, valid_ids)
def test_scan_patterns_are_bounded_to_their_execution(t: str, e1: str, e2: str, step: str) -> None:
    key = keys.step_key(t, e1, step)
    assert fnmatch.fnmatchcase(key, keys.steps_pattern(t, e2)) == (e1 == e2)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "non-empty"),
        ("a:b", "':'"),
        ("a/b", "'/'"),
        ("..", "path steps"),
        ("a*", "'*'"),
        ("{a}", "'{'"),
        ("a b", "' '"),
        ("a\x00", "'\\x00'"),
        ("x" * 201, "at most 200"),
        (42, "expected a str"),
    ],
)
def test_bad_ids_say_what_and_where(value: object, fragment: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        keys.step_key("org", "run", value)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "step_id" in str(info.value)


def test_bad_tenant_names_the_pattern_and_place() -> None:
    with pytest.raises(InvalidTenantError, match=r"org 42.*\^\[a-zA-Z0-9_-\]\{1,64\}\$.*tenant_id"):
        keys.events_key("org 42")


def test_layouts_match_the_design() -> None:
    assert keys.step_key("o", "e", "s") == "t:o:exec:e:steps:s"
    assert keys.flow_vars_key("o", "f") == "t:o:flow:f:vars"
    assert keys.lease_key("o", "e") == "t:o:exec:e:lease"
    assert keys.events_key("o") == "t:o:events"
    assert keys.cold_step_path("o", "e", "s") == "t/o/exec/e/steps/s.json"
    assert keys.cold_archive_path("o", "f", "e") == "t/o/archive/f/e.json"
    assert keys.mongo_db_name("Org") != keys.mongo_db_name("org")
    assert len(keys.mongo_db_name("A" * 64)) <= 63


@pytest.mark.parametrize("attempt", [-1, True, 1.0, "0", 2**53])
def test_bad_attempts_are_rejected(attempt: object) -> None:
    with pytest.raises(InvalidKeyError, match="expected an int >= 0"):
        keys.cold_step_data_path("o", "e", "s", attempt, "0" * 64)  # type: ignore[arg-type]


def test_the_cache_of_valid_ids_is_bounded_and_keeps_the_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(keys, "_VALID_CACHE_SIZE", 3)
    monkeypatch.setattr(keys, "_VALID_IDS", set())
    for i in range(10):
        assert keys.validate_id(f"ok-{i}") == f"ok-{i}"
        assert keys.validate_id(f"ok-{i}") == f"ok-{i}"  # now from the cache
    assert 0 < len(keys._VALID_IDS) <= 3
    with pytest.raises(InvalidKeyError, match="at `step_id`"):
        keys.validate_id("ok-9:x", kind="step id")
    with pytest.raises(InvalidTenantError):
        keys.validate_tenant("ok 9")


def test_step_keys_are_the_step_and_attempts_keys() -> None:
    assert keys.step_keys("org_42", "run-1", "clean") == (
        keys.step_key("org_42", "run-1", "clean"),
        keys.step_attempts_key("org_42", "run-1", "clean"),
    )
    with pytest.raises(InvalidKeyError, match="step id"):
        keys.step_keys("org_42", "run-1", "a:b")


@given(tenants)
def test_no_tenant_id_can_spell_another_tenants_mongo_database(t: str) -> None:
    # A hashed name must not be reachable as a plain one: a tenant named after the hashed
    # suffix of another would otherwise share its database.
    name = keys.mongo_db_name(t)
    suffix = name[len("execctx_") :]
    try:
        twin = keys.mongo_db_name(suffix)
    except InvalidTenantError:
        return  # the suffix is no tenant id at all
    if suffix != t:
        assert twin.lower() != name.lower()


def test_the_hashed_mongo_name_of_a_mixed_case_tenant_is_not_a_plain_name() -> None:
    hashed = keys.mongo_db_name("A")
    assert keys.mongo_db_name(hashed[len("execctx_") :]) != hashed


@pytest.mark.parametrize("char", ["é", "ж", "\U0001f600"])
def test_ids_are_bounded_by_their_encoded_length(char: str) -> None:
    # 200 characters pass the character bound, but their cold path segment would exceed the
    # 255-byte file name limit: refused up front, by UTF-8 length.
    with pytest.raises(InvalidKeyError, match="UTF-8 bytes"):
        keys.validate_id(char * 200, kind="step id")
    fits = char * (keys.MAX_ID_LENGTH // len(char.encode()))
    segment = keys.cold_segment(keys.validate_id(fits, kind="step id"))
    assert len(segment.encode()) <= 255 - len(".json")


@pytest.mark.parametrize("blank", ["\u3164", "\uffa0", "\u115f", "\u1160", "\u2800", "\u034f"])
def test_visually_blank_characters_are_refused(blank: str) -> None:
    for value in (blank, f"run{blank}", blank * 3):
        with pytest.raises(InvalidKeyError, match="not allowed"):
            keys.validate_id(value, kind="execution id")


@given(st.text(min_size=1, max_size=20))
def test_ids_differing_by_case_or_normalisation_never_share_a_cold_path(text: str) -> None:
    import unicodedata

    variants = {text, text.upper(), text.lower(), text.casefold()}
    variants |= {unicodedata.normalize(form, v) for v in list(variants) for form in ("NFC", "NFD")}
    valid = set()
    for v in variants:
        try:
            valid.add(keys.validate_id(v, kind="step id"))
        except InvalidKeyError:
            continue
    # What a case-insensitive, normalising file system would see of each path:
    folded = {
        unicodedata.normalize("NFC", keys.cold_step_path("o", "e", v)).casefold() for v in valid
    }
    assert len(folded) == len(valid)
