"""Format detection: sound against jsonschema's checkers, and the same for rows and Arrow."""

from __future__ import annotations

import os

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from execctx_nb import infer_schema
from execctx_nb.inference._formats import LOCAL_PATTERNS, detect_format, looks_numeric

CHECKER = Draft202012Validator.FORMAT_CHECKER
SEEDS = [
    "2024-01-31T23:59:59Z",
    "2024-02-29T00:00:00.5+05:30",
    "2023-02-29",
    "2024-12-31",
    "23:59:59Z",
    "00:00:00.1-01:00",
    "123e4567-e89b-12d3-a456-426614174000",
    "192.168.0.1",
    "255.0.0.0",
    "user@example.com",
    "https://example.com/a?b=c#d",
    "urn:isbn:0451450523",
    "mailto:a@b.co",
    "2024-01-01T10:00:00",
    "2024-01-01 10:00",
    "10:30",
    "10:30:00",
]
# mutations that break formats in ways checkers notice (Unicode digits, spaces, non-ASCII)
NOISE = st.sampled_from(
    ["", " ", "é", "٣", "%", "%zz", "Z", "T", ":", "-", "0", "9", "\n", "@", ".", "/"]
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    value = draw(st.sampled_from(SEEDS))
    if draw(st.booleans()):
        return value
    i = draw(st.integers(0, len(value)))
    j = draw(st.integers(i, min(len(value), i + 2)))
    return value[:i] + draw(NOISE) + value[j:]


N = int(os.environ.get("EXECCTX_HYPOTHESIS_EXAMPLES", "150"))
# URL-shaped strings from every character the RFC 3986 grammar treats specially, and some
# it does not allow (brackets outside a host, a second "#", a colon after the port, "Å").
URL_PARTS = st.sampled_from(
    [*"abcXYZ019-._~!$&'()*+,;=:@/?#[]%", "%41", "%zz", "Å", " ", "::", "[::1]", ":80"]
)


@st.composite
def url_like(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http://", "https://", "urn:", "mailto:", "ftp://"]))
    return scheme + "".join(draw(st.lists(URL_PARTS, min_size=1, max_size=14)))


@settings(max_examples=4 * N, deadline=None)
@given(st.lists(url_like(), min_size=1, max_size=4))
def test_every_value_called_a_uri_passes_the_strict_checker(values: list[str]) -> None:
    if detect_format(values) == "uri":
        for v in values:
            assert CHECKER.conforms(v, "uri"), v


def test_uri_claims_the_issue_found_unsound_are_gone() -> None:
    for bad in (
        "https://api.example.com/items?filter[status]=open",
        "http://a.com/x#y#z",
        "http://[foo]/",
        "urn:example:list[1]",
        "http://host:80:81/",
        "http://no.wikipedia.org/wiki/Valle_flyplass,_Åraksøyne",
    ):
        assert detect_format([bad]) is None, bad
    for good in ("https://u:p@h.com:8080/a/b?x=1&y=2#frag", "mailto:a@b.c", "http://h.com"):
        assert detect_format([good]) == "uri", good


VALUES = st.lists(mutated(), min_size=1, max_size=12, unique=True)


@settings(max_examples=N, deadline=None)
@given(VALUES)
def test_a_detected_format_passes_the_checker_for_every_value(values: list[str]) -> None:
    name = detect_format(values)
    if name is None:
        return
    for v in values:
        if name in LOCAL_PATTERNS:
            assert Draft202012Validator({"pattern": LOCAL_PATTERNS[name]}).is_valid(v), v
        else:
            assert CHECKER.conforms(v, name), (name, v)


@settings(max_examples=N, deadline=None)
@given(VALUES)
def test_rows_and_arrow_agree(values: list[str]) -> None:
    rows = [{"v": v} for v in values]
    by_rows = infer_schema(rows)["properties"]["v"]
    by_arrow = infer_schema(pa.Table.from_pylist(rows))["properties"]["v"]
    assert by_rows == by_arrow


def test_each_format_is_found_by_both_paths() -> None:
    groups = {
        "date-time": SEEDS[0:2],
        "date": [SEEDS[3]],
        "time": SEEDS[4:6],
        "uuid": [SEEDS[6]],
        "ipv4": SEEDS[7:9],
        "email": [SEEDS[9]],
        "uri": SEEDS[10:12],
        "local-date-time": SEEDS[13:15],
        "local-time": SEEDS[15:17],
    }
    for name, values in groups.items():
        assert detect_format(values) == name


def test_calendar_and_character_set_near_misses() -> None:
    assert detect_format(["2023-02-29"]) is None  # not a leap year
    assert detect_format(["٢٠٢٤-01-01"]) is None  # Unicode digits
    assert detect_format(["https://example.com/é"]) is None  # an IRI, not a URI
    assert detect_format(["https://example.com/%zz"]) is None


def test_numeric_looking() -> None:
    assert all(looks_numeric(s) for s in ["1", "-2.5", "1e9", " 7 ", "nan", ".5"])
    assert not any(looks_numeric(s) for s in ["a1", "1-2", "", "one"])


def test_email_is_the_ascii_addr_spec_strict_validators_accept() -> None:
    # Other engines validate with strict checkers (ajv-formats "full"): a non-ASCII local
    # part is idn-email, a bracketed IP or a label starting with "-" is not a hostname.
    assert detect_format(["first.last+tag@sub.example.co", "o'neil@x.io"]) == "email"
    for near in [
        "é@example.com",
        "a@[1.2.3.4]",
        "x@-a.io",
        "x@a-.io",
        "x@a..io",
        ".a@x.io",
        "a.@x.io",
        "a..b@x.io",
        "a@x_y.io",
        "a(b)@x.io",
    ]:
        assert detect_format(["a@example.com", near]) is None, near


# The uri body is an unrolled possessive loop; this is the plain alternation it replaces.
_REF_PCT = "%[0-9A-Fa-f]{2}"
_REF_PCHAR = "A-Za-z0-9._~!$&'()*+,;=:@"
_REF_PATH = rf"(?:[{_REF_PCHAR}/-]|{_REF_PCT})"
_REF_QUERY = rf"(?:[{_REF_PCHAR}/?-]|{_REF_PCT})"
_REF_USER = rf"(?:[A-Za-z0-9._~!$&'()*+,;=:-]|{_REF_PCT})"
_REF_HOST = rf"(?:[A-Za-z0-9._~!$&'()*+,;=-]|{_REF_PCT})"
# RFC 3986: scheme "://" [userinfo "@"] host [":" port] path-abempty, or an authority-less
# scheme; then [? query] [# fragment]
_REF_URI = (
    rf"(?:[A-Za-z][A-Za-z0-9+.-]*://(?:{_REF_USER}+@)?{_REF_HOST}+(?::[0-9]*)?(?:/{_REF_PATH}*)?"
    rf"|(?:mailto|urn|tel|data):{_REF_PATH}+)(?:\?{_REF_QUERY}*)?(?:#{_REF_QUERY}*)?"
)
_URI_PIECES = st.sampled_from(
    [*"aZ09._~:/?#[]@!$&'()*+,;=-% \n\u00e9", "%2F", "%zz", "%4", "://", "http://", "mailto:"]
)


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(["", "http://", "s3://", "mailto:", "urn:", "data:", "x"]),
    st.lists(_URI_PIECES, max_size=16).map("".join),
)
def test_the_unrolled_uri_expression_accepts_exactly_the_reference_language(
    scheme: str, rest: str
) -> None:
    import re

    from execctx_nb.inference._formats import _BODIES

    value = scheme + rest
    ours = re.fullmatch(_BODIES["uri"], value, re.ASCII)
    reference = re.fullmatch(_REF_URI, value, re.ASCII)
    assert (ours is None) == (reference is None), value


def test_huge_arrow_strings_are_counted_by_length_and_ends_not_hashed() -> None:
    # Values longer than any format: opaque strings, counted by (byte length, first and last
    # KB). Equal ends and lengths count as one, a differing middle is not looked at.
    base = "x" * 100_000
    values = [base + str(i) for i in range(30)] + [base + "0"] * 5 + [None]
    values.append("y" * 50_000 + "m" + "y" * 49_999)  # middle differs from the next
    values.append("y" * 50_000 + "n" + "y" * 49_999)
    schema = infer_schema(pa.table({"s": pa.array(values, pa.large_string())}))
    column = schema["properties"]["s"]
    assert column["type"] == ["null", "string"] and "format" not in column
    assert "enum" not in column and column["x-execctx-cardinality"] == 31
