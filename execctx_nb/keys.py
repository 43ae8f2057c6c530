"""Every structured string of the protocol, built here and nowhere else.

Hot tier (Valkey)::

    t:{tenantId}:exec:{executionId}:steps:{stepId}       latest envelope (JSON string)
    t:{tenantId}:exec:{executionId}:attempts:{<step key>}  hash attempt -> envelope JSON
    t:{tenantId}:exec:{executionId}:lease                lease owner token
    t:{tenantId}:exec:{executionId}:index                sorted set: step ids (first write ms)
    t:{tenantId}:executions                              sorted set: execution ids (first write ms)
    t:{tenantId}:flow:{flowId}:vars                      hash of flow variables
    t:{tenantId}:events                                  execution event stream
    t:{tenantId}:events:dlq:{<events key>}               dead letters of that stream
    t:{tenantId}:events:dedup:{<events key>}:{group}:{idem}  a group's lease / done mark
    t:{tenantId}:probe                                   never written: read to check access

Cold tier (object store)::

    t/{tenantId}/exec/{executionId}/steps/{stepId}.json
    t/{tenantId}/exec/{executionId}/steps/{stepId}/a{attempt}/{sha256}.parquet
    t/{tenantId}/archive/{flowId}/{executionId}.json

In cold paths each id is a *segment* (:func:`cold_segment`): the id itself when it is
lowercase ASCII (``[a-z0-9_.-]``), else the id followed by ``~`` and 12 hex digits of the
sha256 of its UTF-8 bytes, so ids that differ only by case or Unicode normalisation never
share a path on a case-insensitive or normalising file system (macOS, Windows). Step data is
content-addressed (its file is named by its own sha256), so two writers racing on one
attempt never overwrite each other's object.

Braces are placeholders, except ``{<step key>}`` and ``{<events key>}``: there the key's full
name stands in braces, a Valkey Cluster hash tag that puts an auxiliary key in the slot of
the protocol key it belongs to (the protocol keys themselves stay byte-identical). Ids are validated so that no id can reach
into another tenant's or another execution's keys, and distinct id tuples never share a key:
ids never contain ``:`` or ``/`` (the separators), glob characters, braces, whitespace or
control characters, and are never ``.`` or ``..``.

Examples
--------
>>> step_key("org_42", "run-1", "clean")
't:org_42:exec:run-1:steps:clean'
>>> cold_step_path("org_42", "run-1", "clean")
't/org_42/exec/run-1/steps/clean.json'
>>> cold_segment("Clean")
'Clean~5137c8760c94'
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

from execctx_nb.errors import InvalidKeyError, InvalidTenantError

__all__ = [
    "MAX_ATTEMPT",
    "MAX_ID_LENGTH",
    "TENANT_ACL_COMMANDS",
    "TENANT_PATTERN",
    "cold_archive_path",
    "cold_attempt_prefix",
    "cold_execution_prefix",
    "cold_segment",
    "cold_step_data_path",
    "cold_staging_path",
    "cold_step_path",
    "cold_tenant_prefix",
    "dedup_key",
    "dedup_prefix",
    "dlq_key",
    "events_key",
    "execution_pattern",
    "execution_prefix",
    "TENANTS_PATTERN",
    "executions_index_key",
    "parse_tenant_index_key",
    "executions_pattern",
    "flow_vars_key",
    "lease_key",
    "mongo_db_name",
    "parse_execution_key",
    "parse_step_key",
    "step_attempts_key",
    "step_attempts_pattern",
    "step_key",
    "step_keys",
    "step_keys_of",
    "step_keys_under",
    "tenant_acl_rules",
    "tenant_probe_key",
    "steps_index_key",
    "steps_pattern",
    "tenant_pattern",
    "tenant_prefix",
    "validate_attempt",
    "validate_id",
    "validate_tenant",
]

TENANT_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
MAX_ID_LENGTH = 200
"""Longest id, in characters and in UTF-8 bytes (a cold path segment stays below 255 bytes)."""
MAX_ATTEMPT = 2**53 - 1

_TENANT_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Forbidden in execution, step and flow ids: the key and path separators, glob and brace
# characters (SCAN MATCH patterns), backslash (Windows paths, glob escapes) and quotes;
# besides these, every code point whose Unicode category is "other" (control, format,
# unassigned, private use, surrogate) or "separator" (spaces, line breaks).
_FORBIDDEN_RE = re.compile(r"[:/\\{}\[\]*?\"']")
_FORBIDDEN_ASCII_RE = re.compile(r"[\x00-\x20\x7f:/\\{}\[\]*?\"']")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp"})
# Letters and symbols that render as nothing (fillers, blank patterns, invisible vowels): an
# id made of them looks empty, or like another id, in every listing. And U+FFFD, which only
# a decoder that met invalid bytes writes: such an id was mangled on its way here.
_BLANK = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0\ufffd"
    "\U0001d159\U0001d173\U0001d174\U0001d175\U0001d176\U0001d177\U0001d178\U0001d179\U0001d17a"
)
_SAFE_SEGMENT_RE = re.compile(r"[a-z0-9_.-]+")


# Ids already found valid: the same few ids are validated again and again on hot paths
# (scope, envelope, every key builder, every decoded record), and a set lookup costs ~30 ns
# against ~0.3 us for the checks. Validity never depends on `kind` or `where`. Bounded:
# cleared when full (a cache miss only repeats the checks).
_VALID_IDS: set[str] = set()
_VALID_TENANTS: set[str] = set()
_VALID_CACHE_SIZE = 65_536


def _remember(cache: set[str], value: str) -> None:
    if len(cache) >= _VALID_CACHE_SIZE:
        cache.clear()
    cache.add(value)


def _first_forbidden(value: str) -> int | None:
    if value.isascii():
        # The ASCII fast path (every id on the hot path of the event stream): one regex for
        # the separators and the controls, space and DEL; ~8x faster than a scan per character.
        hit = _FORBIDDEN_ASCII_RE.search(value)
        return hit.start() if hit else None
    bad = _FORBIDDEN_RE.search(value)
    first = bad.start() if bad else None
    extra = next(
        (
            i
            for i, c in enumerate(value)
            if unicodedata.category(c) in _FORBIDDEN_CATEGORIES or c in _BLANK
        ),
        None,
    )
    candidates = [i for i in (first, extra) if i is not None]
    return min(candidates) if candidates else None


def validate_tenant(tenant_id: object, *, where: str = "tenant_id") -> str:
    """Return ``tenant_id`` if it matches :data:`TENANT_PATTERN`, else raise InvalidTenantError.

    >>> validate_tenant("org_42")
    'org_42'
    """
    if type(tenant_id) is str and tenant_id in _VALID_TENANTS:
        return tenant_id
    if not isinstance(tenant_id, str) or _TENANT_RE.fullmatch(tenant_id) is None:
        raise InvalidTenantError(
            f"Invalid tenant id {tenant_id!r}: expected a string matching {TENANT_PATTERN}"
            f" - at `{where}`; use only letters, digits, '_' and '-', 1 to 64 characters"
        )
    _remember(_VALID_TENANTS, tenant_id)
    return tenant_id


def validate_id(value: object, *, kind: str = "id", where: str | None = None) -> str:
    """Return ``value`` if it is usable as an execution, step or flow id, else raise.

    >>> validate_id("clean", kind="step id")
    'clean'
    """
    if type(value) is str and value in _VALID_IDS:
        return value
    at = where or kind.replace(" ", "_")
    if not isinstance(value, str):
        raise InvalidKeyError(
            f"Invalid {kind} {value!r}: expected a str, got {type(value).__name__} - at `{at}`"
        )
    if not value:
        raise InvalidKeyError(f"Invalid {kind} '': expected a non-empty string - at `{at}`")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidKeyError(
            f"Invalid {kind} of {len(value)} characters: expected at most {MAX_ID_LENGTH} - at `{at}`"
        )
    if not value.isascii():
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_ID_LENGTH:
            raise InvalidKeyError(
                f"Invalid {kind} of {size} UTF-8 bytes: expected at most {MAX_ID_LENGTH} (file"
                f" names are limited to 255 bytes) - at `{at}`; use a shorter id"
            )
    pos = _first_forbidden(value)
    if pos is not None:
        raise InvalidKeyError(
            f"Invalid {kind} {value!r}: character {value[pos]!r} at position {pos} is not"
            f" allowed (no ':' '/' '\\' braces, brackets, '*' '?', quotes, whitespace, blank or"
            f" control characters) - at `{at}`"
        )
    if value in {".", ".."}:
        raise InvalidKeyError(f"Invalid {kind} {value!r}: '.' and '..' are path steps - at `{at}`")
    _remember(_VALID_IDS, value)
    return value


def validate_attempt(attempt: object, *, where: str = "attempt") -> int:
    """Return ``attempt`` if it is an int in [0, 2**53 - 1] (not a bool), else raise InvalidKeyError.

    The cap keeps attempts exact in every JSON implementation (RFC 8785 integers).
    """
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt <= MAX_ATTEMPT:
        raise InvalidKeyError(
            f"Invalid attempt {attempt!r}: expected an int >= 0 and <= 2**53 - 1 - at `{where}`"
        )
    return attempt


def tenant_prefix(tenant_id: str) -> str:
    """The prefix every hot-tier key of a tenant starts with: ``t:{tenantId}:``."""
    return f"t:{validate_tenant(tenant_id)}:"


def tenant_pattern(tenant_id: str) -> str:
    """A SCAN MATCH pattern for every key of one tenant (and no other)."""
    return tenant_prefix(tenant_id) + "*"


def execution_prefix(tenant_id: str, execution_id: str) -> str:
    """``t:{tenantId}:exec:{executionId}:``: every key of one execution starts with this."""
    return f"{tenant_prefix(tenant_id)}exec:{validate_id(execution_id, kind='execution id')}:"


def execution_pattern(tenant_id: str, execution_id: str) -> str:
    """SCAN MATCH pattern for every key of one execution (steps, attempts, lease)."""
    return execution_prefix(tenant_id, execution_id) + "*"


def executions_pattern(tenant_id: str) -> str:
    """SCAN MATCH pattern for the step keys of every execution of a tenant."""
    return f"{tenant_prefix(tenant_id)}exec:*:steps:*"


def step_key(tenant_id: str, execution_id: str, step_id: str) -> str:
    """``t:{tenantId}:exec:{executionId}:steps:{stepId}``: the latest envelope of a step."""
    return (
        f"{execution_prefix(tenant_id, execution_id)}steps:{validate_id(step_id, kind='step id')}"
    )


def executions_index_key(tenant_id: str) -> str:
    """``t:{tenantId}:executions``: sorted set of the tenant's execution ids, scored by the
    time (Unix ms) their first step was written: the listing index (no keyspace scan)."""
    return f"{tenant_prefix(tenant_id)}executions"


TENANTS_PATTERN = "t:*:executions"
"""SCAN MATCH pattern for every tenant's listing index (``%execctx tenants``)."""


def parse_tenant_index_key(key: str | bytes) -> str | None:
    """The tenant id of a listing-index key ``t:{tenantId}:executions``, or None."""
    text = key.decode(errors="replace") if isinstance(key, bytes) else key
    head, sep, rest = text.partition(":")
    tenant, sep2, tail = rest.partition(":")
    if head != "t" or not sep or not sep2 or tail != "executions":
        return None
    return tenant if _TENANT_RE.fullmatch(tenant) else None


def steps_index_key(tenant_id: str, execution_id: str) -> str:
    """``t:{tenantId}:exec:{executionId}:index``: sorted set of the execution's step ids,
    scored by the time (Unix ms) each was first written."""
    return f"{execution_prefix(tenant_id, execution_id)}index"


def steps_pattern(tenant_id: str, execution_id: str) -> str:
    """SCAN MATCH pattern for every step key of one execution."""
    return f"{execution_prefix(tenant_id, execution_id)}steps:*"


def step_attempts_key(tenant_id: str, execution_id: str, step_id: str) -> str:
    """``t:{tenantId}:exec:{executionId}:attempts:{<step key>}``: hash of attempt -> envelope.

    The step key's full name in braces is a Valkey Cluster hash tag: the hash lives in the
    step key's slot, so one script writes both (ids never hold braces: tags cannot collide).
    """
    return step_keys(tenant_id, execution_id, step_id)[1]


def step_keys(tenant_id: str, execution_id: str, step_id: str) -> tuple[str, str]:
    """``(step_key, step_attempts_key)`` of one step, its ids validated once (the write path)."""
    return step_keys_under(execution_prefix(tenant_id, execution_id), step_id)


def step_keys_under(prefix: str, step_id: str) -> tuple[str, str]:
    """:func:`step_keys` under an :func:`execution_prefix` built (and checked) before."""
    key = f"{prefix}steps:{validate_id(step_id, kind='step id')}"
    return key, f"{prefix}attempts:{{{key}}}"


def step_keys_of(tenant_id: str, execution_id: str, step_ids: list[str]) -> list[str]:
    """The :func:`step_key` of each of ``step_ids``: the tenant and execution checked once."""
    prefix = execution_prefix(tenant_id, execution_id) + "steps:"
    return [prefix + validate_id(step, kind="step id") for step in step_ids]


def step_attempts_pattern(tenant_id: str, execution_id: str) -> str:
    """SCAN MATCH pattern for every attempts hash of one execution."""
    return f"{execution_prefix(tenant_id, execution_id)}attempts:*"


def lease_key(tenant_id: str, execution_id: str) -> str:
    """``t:{tenantId}:exec:{executionId}:lease``."""
    return f"{execution_prefix(tenant_id, execution_id)}lease"


def tenant_probe_key(tenant_id: str) -> str:
    """``t:{tenantId}:probe``: never written; reading it checks the credentials may read
    the tenant's keys (SCAN ignores ACL key patterns, so listings check first)."""
    return f"t:{validate_tenant(tenant_id)}:probe"


def flow_vars_key(tenant_id: str, flow_id: str) -> str:
    """``t:{tenantId}:flow:{flowId}:vars``."""
    return f"{tenant_prefix(tenant_id)}flow:{validate_id(flow_id, kind='flow id')}:vars"


def events_key(tenant_id: str) -> str:
    """``t:{tenantId}:events``: the tenant's execution event stream."""
    return f"{tenant_prefix(tenant_id)}events"


def dlq_key(tenant_id: str) -> str:
    """``t:{tenantId}:events:dlq:{<events key>}``: dead letters of the tenant's event stream
    (tagged with the stream's name: same cluster slot, so one script moves an entry)."""
    stream = events_key(tenant_id)
    return f"{stream}:dlq:{{{stream}}}"


def dedup_key(tenant_id: str, group: str, idempotency_key: str) -> str:
    """``t:{tenantId}:events:dedup:{<events key>}:{group}:{idem}``: a group's mark of one event.

    Holds a short lease while a handler runs and a "done" mark (with a TTL) after it returned;
    see docs/wire-format.md, "Event stream".
    """
    idem = validate_id(idempotency_key, kind="idempotency key", where="idem")
    return dedup_prefix(tenant_id, group) + idem


@functools.lru_cache(maxsize=256)
def dedup_prefix(tenant_id: str, group: str) -> str:
    """``t:{tenantId}:events:dedup:{<events key>}:{group}:``: what :func:`dedup_key` puts first.

    The subscriber's Lua scripts append each entry's ``idem`` to it server-side (after
    checking the same character rules as :func:`validate_id` for ASCII keys).
    """
    # Called once per batch: validate the (tenant, group) pair once, not per event.
    stream = events_key(tenant_id)
    return (
        f"{stream}:dedup:{{{stream}}}:{validate_id(group, kind='consumer group', where='group')}:"
    )


def parse_step_key(key: str | bytes) -> tuple[str, str, str]:
    """Split a step key into ``(tenant_id, execution_id, step_id)``; the inverse of step_key.

    >>> parse_step_key("t:org_42:exec:run-1:steps:clean")
    ('org_42', 'run-1', 'clean')
    """
    text = key.decode() if isinstance(key, bytes) else key
    parts = text.split(":")
    if len(parts) != 6 or parts[0] != "t" or parts[2] != "exec" or parts[4] != "steps":
        raise InvalidKeyError(
            f"Not a step key: {text!r}; expected t:{{tenantId}}:exec:{{executionId}}:steps:{{stepId}}"
        )
    tenant, execution, step = parts[1], parts[3], parts[5]
    if step_key(tenant, execution, step) != text:  # validates every part
        raise InvalidKeyError(f"Not a canonical step key: {text!r}")
    return tenant, execution, step


def parse_execution_key(key: str | bytes, tenant_id: str) -> str | None:
    """Return the execution id of any key under ``t:{tenantId}:exec:``, or None."""
    text = key.decode() if isinstance(key, bytes) else key
    head = f"{tenant_prefix(tenant_id)}exec:"
    if not text.startswith(head):
        return None
    execution, sep, _ = text[len(head) :].partition(":")
    return execution if sep and execution else None


def cold_segment(value: str) -> str:
    """An id as one cold-path segment: itself if lowercase ASCII, else ``{id}~{sha256[:12]}``.

    Distinct ids always give distinct segments, even compared without case or after Unicode
    normalisation (the suffix hashes the exact UTF-8 bytes), so no two ids share an object
    on a case-insensitive or normalising file system.

    >>> cold_segment("run-1")
    'run-1'
    >>> cold_segment("Run-1") != cold_segment("run-1").upper()
    True
    """
    if _SAFE_SEGMENT_RE.fullmatch(value):
        return value
    return f"{value}~{_segment_digest(value)}"


@functools.lru_cache(maxsize=4096)
def _segment_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def cold_tenant_prefix(tenant_id: str) -> str:
    """``t/{tenantId}/``: every cold-tier object of a tenant starts with this."""
    return f"t/{cold_segment(validate_tenant(tenant_id))}/"


def cold_execution_prefix(tenant_id: str, execution_id: str) -> str:
    """``t/{tenantId}/exec/{executionId}/``."""
    execution = cold_segment(validate_id(execution_id, kind="execution id"))
    return f"{cold_tenant_prefix(tenant_id)}exec/{execution}/"


def cold_step_path(tenant_id: str, execution_id: str, step_id: str) -> str:
    """``t/{tenantId}/exec/{executionId}/steps/{stepId}.json``: a step's envelope."""
    step = cold_segment(validate_id(step_id, kind="step id"))
    return f"{cold_execution_prefix(tenant_id, execution_id)}steps/{step}.json"


def cold_attempt_prefix(tenant_id: str, execution_id: str, step_id: str, attempt: int) -> str:
    """``t/{tenantId}/exec/{executionId}/steps/{stepId}/a{attempt}/``: one attempt's data."""
    step = cold_segment(validate_id(step_id, kind="step id"))
    prefix = cold_execution_prefix(tenant_id, execution_id)
    return f"{prefix}steps/{step}/a{validate_attempt(attempt)}/"


_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def cold_step_data_path(
    tenant_id: str, execution_id: str, step_id: str, attempt: int, sha256: str
) -> str:
    """``t/{tenantId}/exec/{executionId}/steps/{stepId}/a{attempt}/{sha256}.parquet``.

    Large step data, named by the sha256 of its own bytes (content-addressed).
    """
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise InvalidKeyError(
            f"Invalid sha256 {sha256!r}: expected 64 lowercase hex digits - at `sha256`"
        )
    return f"{cold_attempt_prefix(tenant_id, execution_id, step_id, attempt)}{sha256}.parquet"


def cold_staging_path(
    tenant_id: str, execution_id: str, step_id: str, attempt: int, token: str
) -> str:
    """``.../steps/{stepId}/a{attempt}/upload-{token}.tmp``: data uploading under a temporary
    name while its sha256 (its final name) is computed; renamed once the write may go on."""
    if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{8,64}", token):
        raise InvalidKeyError(f"Invalid staging token {token!r}: expected hex - at `token`")
    return f"{cold_attempt_prefix(tenant_id, execution_id, step_id, attempt)}upload-{token}.tmp"


def cold_archive_path(tenant_id: str, flow_id: str, execution_id: str) -> str:
    """``t/{tenantId}/archive/{flowId}/{executionId}.json``: an archived execution."""
    flow = cold_segment(validate_id(flow_id, kind="flow id"))
    execution = cold_segment(validate_id(execution_id, kind="execution id"))
    return f"{cold_tenant_prefix(tenant_id)}archive/{flow}/{execution}.json"


# Every command the store, the publisher, the subscribers and tail send (docs/security.md).
TENANT_ACL_COMMANDS = (
    # store: envelopes, attempts, flow vars, leases, listings, the put and lease scripts
    "get", "set", "mset", "mget", "exists", "del", "unlink", "scan", "hget", "hset", "hsetnx",
    "hgetall", "hdel", "hkeys", "hlen", "pexpire", "eval", "evalsha", "script|load", "delifeq",
    "ping", "zadd", "zrange", "zrevrange", "zrem", "zscore",
    # a Valkey Cluster: the probe and the slot map the cluster client reads
    "cluster|info", "cluster|slots", "cluster|shards", "cluster|nodes", "readonly",
    # event stream: publish, consume (scripts above), reclaim, dead letters, trim, tail
    "xadd", "xread", "xreadgroup", "xack", "xclaim", "xautoclaim", "xpending", "xgroup|create",
    "xrange", "xrevrange", "xlen", "xinfo|groups", "xinfo|stream", "xtrim", "msetex",
    # the native consume loop: done marks, acks and the next read in one MULTI/EXEC
    "multi", "exec", "discard",
)  # fmt: skip


def tenant_acl_rules(tenant_id: str) -> list[str]:
    """The ``ACL SETUSER`` rules of a user limited to one tenant: its keys, the commands used.

    Nothing else is granted: no other key, no pub/sub channel, no INFO (``check_health``
    then probes with PING), no CLIENT SETNAME, no administrative command.

    >>> tenant_acl_rules("org_42")[:4]
    ['resetkeys', '~t:org_42:*', 'resetchannels', '-@all']
    """
    tenant = validate_tenant(tenant_id)
    return ["resetkeys", f"~t:{tenant}:*", "resetchannels", "-@all"] + [
        f"+{c}" for c in TENANT_ACL_COMMANDS
    ]


def mongo_db_name(tenant_id: str) -> str:
    """The per-tenant MongoDB database name.

    MongoDB caps names at 63 bytes and treats names differing only by case as the same
    database, so a tenant id that is lowercase and at most 40 characters maps to
    ``execctx_{tenantId}``; any other gets ``execctx-{lowercased[:24]}_{sha256[:16]}`` so that
    distinct tenants never share a database. The hyphen after ``execctx`` keeps the two forms
    apart: with an underscore, the tenant ``a_559aead08264d579`` would name the database of
    the tenant ``A``.

    >>> mongo_db_name("org_42")
    'execctx_org_42'
    """
    tenant = validate_tenant(tenant_id)
    if tenant == tenant.lower() and len(tenant) <= 40:
        return f"execctx_{tenant}"
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:16]
    return f"execctx-{tenant.lower()[:24]}_{digest}"
