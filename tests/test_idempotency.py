"""idempotency_key: deterministic, unambiguous, pinned for other languages."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execctx_nb import InvalidKeyError, idempotency_key

inputs = st.tuples(
    st.text(max_size=12), st.none() | st.text(max_size=12), st.integers(0, 2**53 - 1)
)


@given(inputs, inputs)
def test_distinct_inputs_never_collide(
    a: tuple[str, str | None, int], b: tuple[str, str | None, int]
) -> None:
    assert (idempotency_key(*a) == idempotency_key(*b)) == (a == b)


@given(inputs, st.sampled_from(["step.committed", "step.failed"]))
def test_kind_separates_keys(a: tuple[str, str | None, int], kind: str) -> None:
    assert idempotency_key(*a, kind=kind) != idempotency_key(*a)


def test_separator_lookalikes_do_not_collide() -> None:
    assert idempotency_key("a", "b:c", 0) != idempotency_key("a:b", "c", 0)
    assert idempotency_key('a","b', "c", 0) != idempotency_key("a", 'b","c', 0)


def test_definition_is_sha256_of_jcs() -> None:
    # The documented definition, spelled out so an engine in another language can match it.
    expected = hashlib.sha256(b'["run-1","clean",2]').hexdigest()
    assert idempotency_key("run-1", "clean", 2) == expected
    expected_kind = hashlib.sha256('["r\u00e9","s",0,"step.committed"]'.encode()).hexdigest()
    assert idempotency_key("r\u00e9", "s", 0, kind="step.committed") == expected_kind


def test_stable_across_processes() -> None:
    code = "from execctx_nb import idempotency_key as k; print(k('run-1', 'clean', 3))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == idempotency_key("run-1", "clean", 3)


@pytest.mark.parametrize("attempt", [-1, True, 1.5, 2**53])
def test_bad_attempt(attempt: object) -> None:
    with pytest.raises(InvalidKeyError, match="attempt"):
        idempotency_key("e", "s", attempt)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("run-\ud800", "s", 0), "execution_id"),
        (("run", "s\udfff", 0), "step_id"),
    ],
)
def test_ids_json_cannot_hold_raise_invalid_key_error(
    args: tuple[str, str, int], where: str
) -> None:
    with pytest.raises(InvalidKeyError, match=rf"surrogate.* - at `{where}`"):
        idempotency_key(*args)


def test_non_string_ids_name_the_argument() -> None:
    with pytest.raises(InvalidKeyError, match=r"expected a str, got int - at `step_id`"):
        idempotency_key("run", 5, 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match=r"expected a str, got NoneType - at `execution_id`"):
        idempotency_key(None, "s", 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match=r"at `kind`"):
        idempotency_key("run", "s", 0, kind=3)  # type: ignore[arg-type]
