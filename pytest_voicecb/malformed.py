"""The malformed corpus: bodies a provider-facing handler must survive (CONTRACT.md rules 2 and 3).

Each ``Case`` is a request body as raw bytes with the content type it is sent under. ``expect`` says
what a correct handler does with it: ``"reject"`` (answer a contract error, never crash) or
``"robust"`` (accept or reject, but answer in the contract shape; a strict profile demands rejection).

The split follows CONTRACT.md. Unprocessable, so ``reject``: not JSON, not a JSON object, no known
callback key, the callback not an object, a required field missing, an empty or null ``callid``, a
body that is not UTF-8, one over the size limit, nesting no parser should follow. Questionable, so
``robust``: wrong JSON types (``null`` in any required field but ``callid``; objects, arrays and
operator-shaped values such as ``{"$ne": null}`` in string fields; JSON's non-standard ``NaN``, which
Python's ``json`` reads), unknown values, non-digit or out-of-order times, a negative fee, extra keys
such as ``__proto__``, a byte-order mark, the wrong content type. ``parse_callback`` (strict) refuses
every case but four: the valid body under the wrong content type, and the three whose only fault is an
extra key (``_id``, ``__proto__``, ``constructor``), since extra fields are legal.

Which cases exist and what each proves do not depend on the seed: where a case's verdict could hang on
an incidental value (an unanswered call's other times, ``"0"`` or ``""``), the case pins it and a twin
case covers the other value.

Each case draws from a stream of its own, derived from the seed and its id, so one seed always gives the
same body under an id, whatever cases or kinds are added or removed; the corpus is built once per seed
and cached (cases are immutable). Every registered kind (``contract.registered_kinds()``) gets its cases.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pytest_voicecb.contract import (
    CALLBACK_MODELS,
    CODE,
    FAILURE,
    MAX_BODY_SIZE,
    PROMPT,
    encode,
    kind_named,
    registered_kinds,
)
from pytest_voicecb.values import JSON_CONTENT_TYPE, MISSING, Case

if TYPE_CHECKING:  # the factory imports this module: only for typing here, so imports run one way
    from collections.abc import Callable

    from pytest_voicecb.factory import PayloadFactory

    Stream = Callable[[str], PayloadFactory]
    """A case id -> the payload factory of that case's own stream."""

__all__ = ["DEEP_NESTING", "FORM", "JSON", "Case", "cases"]

JSON = JSON_CONTENT_TYPE
"""The content type the provider is assumed to send (``contract.JSON_CONTENT_TYPE``)."""
FORM = "application/x-www-form-urlencoded"
"""The wrong content type of the ``transport/form-content-type`` case."""
DEEP_NESTING = 100_000
"""How many arrays deep the ``transport/deep-nesting`` case nests."""


def cases(factory: PayloadFactory, kind: str | None = None) -> list[Case]:
    """The corpus, built on ``factory``'s payloads; ``kind`` keeps only cases about that kind
    (plus the kind-independent ones)."""
    corpus = _corpus(factory)
    if kind is None:
        return list(corpus)
    wanted = kind_named(kind)
    return [case for case in corpus if case.kind in (None, wanted)]


_CACHE: dict[tuple[str, bool, tuple[str, ...]], tuple[Case, ...]] = {}
_CACHE_SIZE = 32
_CACHE_LOCK = threading.Lock()


def _corpus(factory: PayloadFactory) -> tuple[Case, ...]:
    """Every case for ``factory``'s seed, built once per seed, typical mode and set of registered kinds
    (the last 32 are kept)."""
    seed = (str(factory.seed), factory.is_typical, tuple(CALLBACK_MODELS))
    with _CACHE_LOCK:
        found = _CACHE.get(seed)
    if found is None:
        found = _build(factory.derive("malformed"))
        with _CACHE_LOCK:
            if len(_CACHE) >= _CACHE_SIZE:
                del _CACHE[next(iter(_CACHE))]
            found = _CACHE.setdefault(seed, found)
    return found


def _build(root: PayloadFactory) -> tuple[Case, ...]:
    """Every case, each from a stream of its own: ``root.derive(f"case/{id}")``, where ``root`` is
    ``factory.derive("malformed")``. A case's body depends only on the seed and its id, so adding, removing
    or reordering cases (or kinds) never changes another case's body, nor does the ``kind`` asked for."""

    def stream(case_id: str) -> PayloadFactory:
        return root.derive(f"case/{case_id}")

    out: list[Case] = []
    for build in (
        _envelope,
        _not_an_object,
        _missing_fields,
        _overridden,
        _encodings,
        _transport,
        _outcome_twins,
        _seen_in_the_wild,
    ):
        out += build(stream)
    return tuple(out)


# ---- building blocks ------------------------------------------------------------------------------


def _reject(case_id: str, body: bytes, why: str, kind: str | None = None, content_type: str = JSON) -> Case:
    return Case(case_id, body, content_type, "reject", why, kind)


def _robust(case_id: str, body: bytes, why: str, kind: str | None = None, content_type: str = JSON) -> Case:
    return Case(case_id, body, content_type, "robust", why, kind)


def _short(kind: str) -> str:
    return kind_named(kind, short=True)


def _inner(payload: dict[str, Any]) -> dict[str, Any]:
    """The callback object inside an envelope."""
    inner: dict[str, Any] = next(iter(payload.values()))
    return inner


# ---- the cases -------------------------------------------------------------------------------------


def _envelope(stream: Stream) -> list[Case]:
    """Bodies whose outer shape is wrong: nothing a handler can dispatch on."""

    def prompt(case_id: str) -> dict[str, Any]:
        return stream(f"envelope/{case_id}").prompt()

    def valid(case_id: str) -> bytes:
        return encode(prompt(case_id))

    form = "&".join(f"{name}={value}" for name, value in _inner(prompt("form-encoded")).items()).encode()
    truncated = valid("truncated")
    two = stream("envelope/two-known-keys")
    return [
        _reject("envelope/empty-body", b"", "an empty body is not a callback"),
        _reject("envelope/whitespace-body", b" \r\n", "a body of whitespace holds no JSON value"),
        _reject("envelope/form-encoded", form, "the callback's fields form-encoded are not JSON"),
        _reject("envelope/truncated", truncated[: len(truncated) // 2], "a body cut off half-way is not JSON"),
        _reject(
            "envelope/trailing-garbage",
            valid("trailing-garbage") + b"}",
            "a second closing brace after the object is not JSON",
        ),
        _reject(
            "envelope/python-repr",
            repr(prompt("python-repr")).encode(),
            "a Python dict repr (single quotes) is not JSON",
        ),
        _reject(
            "envelope/array-root",
            b"[" + valid("array-root") + b"]",
            "a JSON array is not a callback object, even one holding a callback",
        ),
        _reject(
            "envelope/string-root",
            encode(valid("string-root").decode()),
            "JSON encoded twice: the root is a string, not an object",
        ),
        _reject("envelope/number-root", b"0", "a JSON number is not a callback object"),
        _reject("envelope/null-root", b"null", "JSON null is not a callback object"),
        _reject("envelope/boolean-root", b"true", "a JSON boolean is not a callback object"),
        _reject("envelope/empty-object", b"{}", "no callback key at all: nothing to dispatch on"),
        _reject(
            "envelope/unknown-key",
            encode({"voiceprompt_callback_v2": _inner(prompt("unknown-key"))}),
            "the only top-level key names no documented callback kind",
        ),
        _reject(
            "envelope/no-envelope",
            encode(_inner(prompt("no-envelope"))),
            "the callback's fields without the {kind: ...} envelope: no known key",
        ),
        _robust(
            "envelope/two-known-keys",
            encode({PROMPT: _inner(two.prompt()), CODE: _inner(two.code())}),
            "two kinds in one body is ambiguous, not unusable: a handler may take one or refuse both",
        ),
    ]


def _not_an_object(stream: Stream) -> list[Case]:
    """The envelope is right but the callback under it is not a JSON object."""
    out = []
    for info in registered_kinds():
        kind, short = info.key, info.short
        fields = _inner(stream(f"{short}/callback-array").build(kind))
        out += [
            _reject(f"{short}/callback-null", encode({kind: None}), "the callback is null: there are no fields", kind),
            _reject(
                f"{short}/callback-array", encode({kind: [fields]}), "the callback is an array, not an object", kind
            ),
        ]
    out.append(
        _reject(
            "prompt/callback-json-string",
            encode({PROMPT: json.dumps(_inner(stream("prompt/callback-json-string").prompt()))}),
            "the callback object encoded twice: a string where the object belongs",
            PROMPT,
        )
    )
    return out


def _missing_fields(stream: Stream) -> list[Case]:
    """Every required field of every kind, left out in turn (the field list comes from the models)."""
    out = []
    for info in registered_kinds():
        kind = info.key
        for name, field in info.model.model_fields.items():
            if field.is_required():
                pinned = _UNANSWERED_TIMES if name == "result" else {}  # no result: built as unanswered
                case_id = f"{_short(kind)}/missing-{name}"
                out.append(
                    _reject(
                        case_id,
                        encode(stream(case_id).build(kind, **{name: MISSING, **pinned})),
                        f"{name} is required in every {kind}",
                        kind,
                    )
                )
    return out


# Cases that are a valid payload with some fields overridden: (id, expect, overrides, why). The id's
# first part names the kind; ``"result": "1"`` in the overrides makes an unanswered call.
_T0 = 1_735_689_600  # 2025-01-01 UTC: fixed times for the cases about time order
_UNANSWERED_TIMES = {"accept_time": "0", "end_calltime": "0", "fee": "0"}
# Cases whose result is not "0": the factory builds them as unanswered calls, so their other times are
# pinned to "0" here and to "" in their twins (what they prove must not hang on the seed).
_RESULT_QUESTIONS: tuple[tuple[str, Literal["reject", "robust"], dict[str, Any], str], ...] = tuple(
    (case_id, "robust", {**overrides, **_UNANSWERED_TIMES}, why)
    for case_id, overrides, why in (
        ("prompt/result-null", {"result": None}, "a null result: a wrong JSON type, questionable"),
        ("prompt/result-as-number", {"result": 0}, 'result is the string "0"; the number 0 is seen in the wild'),
        ("code/result-as-number", {"result": 0}, 'result is the string "0"; the number 0 is seen in the wild'),
        ("prompt/result-unknown", {"result": "3"}, 'result is "0", "1" or "2"; "3" is undocumented'),
        ("prompt/result-empty", {"result": ""}, 'result is "0", "1" or "2", never empty'),
    )
)
_NULL_TIMES = (
    ("prompt/accept_time-null", "accept_time", 'unanswered: null, not "0" or ""'),
    ("prompt/end_calltime-null", "end_calltime", 'unanswered: null, not "0" or ""'),
    ("prompt/fee-null", "fee", 'nothing was billed: null instead of "0"'),
)
_OVERRIDDEN: tuple[tuple[str, Literal["reject", "robust"], dict[str, Any], str], ...] = (
    # An empty or null callid: the callback cannot be correlated with the call it reports (an empty one
    # for every kind: see ``_overridden``).
    ("prompt/callid-null", "reject", {"callid": None}, "a null callid is as good as a missing one"),
    # JSON null in place of a string. Where the field may be empty anyway, null is only questionable.
    # JSON null in place of a string is a wrong type (CONTRACT.md rule 3), except in callid (above).
    _RESULT_QUESTIONS[0],
    ("prompt/call_from-null", "robust", {"call_from": None}, 'call_from may be "": null is a wrong type, not a loss'),
    # Unanswered calls with one time null: the other times pinned to "0" (the twins in _outcome_twins
    # pin them to ""), so what the case proves does not hang on the seed.
    *(
        (case_id, "robust", {"result": "1", **_UNANSWERED_TIMES, field: None}, why)
        for case_id, field, why in _NULL_TIMES
    ),
    ("failure/failure_reason-null", "robust", {"failure_reason": None}, "failure_code still says why; null reason"),
    # Right values in the wrong JSON type (CONTRACT.md rule 3).
    *_RESULT_QUESTIONS[1:3],
    ("prompt/fee-as-number", "robust", {"fee": 1}, "fee is a decimal string, not a number"),
    ("prompt/start_calltime-as-number", "robust", {"start_calltime": _T0}, "times are decimal strings, not numbers"),
    ("prompt/mobile-as-number", "robust", {"nationcode": "86", "mobile": 13800138000}, "mobile is a digit string"),
    ("prompt/nationcode-as-number", "robust", {"nationcode": 86}, "nationcode is a digit string, not a number"),
    ("prompt/callid-as-number", "robust", {"callid": 12345678901234567890}, "callid is a string, not a number"),
    ("keypress/keypress-as-number", "robust", {"keypress": 2}, "keypress is a string of keypad characters"),
    ("failure/failure_code-as-string", "robust", {"failure_code": "8"}, 'failure_code is a JSON number, not "8"'),
    ("failure/failure_code-as-float", "robust", {"failure_code": 8.0}, "failure_code is an integer; 8.0 is a float"),
    ("failure/failure_code-as-boolean", "robust", {"failure_code": True}, "failure_code is a number; true is not"),
    # The right JSON types holding values the contract does not allow.
    ("prompt/start_calltime-not-digits", "robust", {"start_calltime": "2025-01-01 08:00:00"}, "a date, not Unix time"),
    ("prompt/accept_time-not-digits", "robust", {"accept_time": "2025-01-01T00:00:05Z"}, "ISO 8601, not Unix time"),
    ("prompt/end_calltime-decimal", "robust", {"end_calltime": f"{_T0 + 60}.5"}, "times are whole seconds"),
    *_RESULT_QUESTIONS[3:],
    ("prompt/fee-negative", "robust", {"fee": "-1"}, "a fee cannot be negative"),
    ("prompt/fee-decimal", "robust", {"fee": "1.5"}, "fee counts whole billed minutes"),
    (
        "prompt/end-before-start",
        "robust",
        {"start_calltime": str(_T0), "accept_time": str(_T0 + 10), "end_calltime": str(_T0 - 60)},
        "the call ends before it started",
    ),
    (
        "prompt/accept-before-start",
        "robust",
        {"start_calltime": str(_T0), "accept_time": str(_T0 - 5), "end_calltime": str(_T0 + 60)},
        "the callee answered before the call was placed",
    ),
    (
        "prompt/answered-without-times",
        "robust",
        {"result": "0", "accept_time": "0", "end_calltime": "0"},
        'result "0" says answered, but there is no accept or end time',
    ),
    (
        "code/end-before-start",
        "robust",
        {"result": "1", **_UNANSWERED_TIMES, "start_calltime": str(_T0), "end_calltime": str(_T0 - 60)},
        "an unanswered call that ends before it started",
    ),
    ("prompt/mobile-with-plus", "robust", {"nationcode": "86", "mobile": "+8613800138000"}, "mobile is digits, no +"),
    ("prompt/nationcode-with-plus", "robust", {"nationcode": "+86"}, "nationcode is digits, without the +"),
    ("prompt/mobile-empty", "robust", {"mobile": ""}, "no callee number; the callid still identifies the call"),
    ("keypress/keypress-empty", "robust", {"keypress": ""}, "a keypress callback that names no key"),
    ("keypress/keypress-letter", "robust", {"keypress": "A"}, "keypad keys are 0-9, * and #"),
    ("failure/failure_code-zero", "robust", {"failure_code": 0}, "failure codes start at 1; 0 is not a failure"),
    ("failure/failure_code-negative", "robust", {"failure_code": -1}, "failure codes are positive"),
)


def _overridden(stream: Stream) -> list[Case]:
    """An empty callid for every kind, then the table above, each on a fresh payload of its kind."""
    out = []
    for info in registered_kinds():
        case_id = f"{info.short}/callid-empty"
        body = encode(stream(case_id).build(info.key, callid=""))
        out.append(_reject(case_id, body, "an empty callid matches no call: nothing to correlate with", info.key))
    for case_id, expect, overrides, why in _OVERRIDDEN:
        kind = kind_named(case_id.partition("/")[0])
        out.append(Case(case_id, encode(stream(case_id).build(kind, **overrides)), JSON, expect, why, kind))
    failure = _inner(stream("failure/failure_code-nan").failure(failure_code=0))
    nan = encode({FAILURE: failure}).replace(b'"failure_code":0', b'"failure_code":NaN')
    out.append(
        _robust(
            "failure/failure_code-nan", nan, "NaN is not JSON, but Python's json module reads it: questionable", FAILURE
        )
    )
    return out


def _encodings(stream: Stream) -> list[Case]:
    """A callback in the wrong character encoding. The contract is UTF-8."""

    # One callback in every encoding (a stream named for the group, drawn once): the cases differ only in
    # how its text is encoded. failure_reason "空号": non-ASCII on purpose.
    text = encode(stream("encoding/*").failure(failure_code=8)).decode("utf-8")
    reason = "空号".encode()
    return [
        _reject(
            "encoding/invalid-utf8",
            text.encode().replace(reason, reason[:-1]),
            "a multi-byte character cut in half is not UTF-8",
        ),
        _reject("encoding/gbk", text.encode("gbk"), "GBK-encoded Chinese text is not UTF-8"),
        _reject("encoding/utf-16", text.encode("utf-16"), "UTF-16 (with a byte-order mark) is not UTF-8"),
        _reject(
            "encoding/utf-16-be",
            text.encode("utf-16-be"),
            "UTF-16 without a byte-order mark is not UTF-8",
        ),
        _robust(
            "encoding/utf-8-bom",
            b"\xef\xbb\xbf" + encode(stream("encoding/utf-8-bom").prompt()),
            "a UTF-8 byte-order mark before valid JSON: RFC 8259 forbids it, lenient parsers skip it",
        ),
    ]


def _transport(stream: Stream) -> list[Case]:
    """How the body is delivered: its declared type, its size, its depth."""
    valid = encode(stream("transport/oversize").prompt())
    padding = MAX_BODY_SIZE + 1 - len(valid) - len(b',"padding":""')
    oversize = valid[:-2] + b',"padding":"' + b"x" * padding + b'"}}'
    deep = encode(stream("transport/deep-nesting").prompt())[:-2] + b',"nested":' + _deeply_nested() + b"}}"
    return [
        _robust(
            "transport/form-content-type",
            encode(stream("transport/form-content-type").prompt()),
            "a valid callback sent as form data: robust handlers read the raw body whatever the header says",
            content_type=FORM,
        ),
        _reject(
            "transport/oversize",
            oversize,
            f"{len(oversize):,} bytes, one over the {MAX_BODY_SIZE:,}-byte limit (real callbacks are under 1 KiB)",
        ),
        _reject(
            "transport/deep-nesting",
            deep,
            f"arrays nested {DEEP_NESTING:,} deep: crashes recursive parsers, so refuse it rather than follow it",
        ),
    ]


def _outcome_twins(stream: Stream) -> list[Case]:
    """The unanswered-call cases above again with the other times ``""`` instead of ``"0"``: a handler
    may survive one and crash on the other, whatever the seed."""
    empty = {"accept_time": "", "end_calltime": "", "fee": "0"}
    out = []
    for case_id, field, why in _NULL_TIMES:
        twin = f"{case_id}-times-empty"
        out.append(_robust(twin, encode(stream(twin).prompt(**{"result": "1", **empty, field: None})), why, PROMPT))
    twin = "code/end-before-start-times-empty"
    body = stream(twin).code(**{"result": "1", **empty, "start_calltime": str(_T0), "end_calltime": str(_T0 - 60)})
    out.append(_robust(twin, encode(body), "an unanswered call ending before it started", CODE))
    for case_id, expect, overrides, why in _RESULT_QUESTIONS:
        kind = kind_named(case_id.partition("/")[0])
        twin = f"{case_id}-times-empty"
        body = stream(twin).build(kind, **{**overrides, **empty})
        out.append(Case(twin, encode(body), JSON, expect, why, kind))
    for kind in (info.key for info in registered_kinds() if info.outcomes):
        twin = f"{_short(kind)}/missing-result-times-empty"
        body = stream(twin).build(kind, **{"result": MISSING, **empty})
        out.append(_reject(twin, encode(body), f"result is required in every {kind}", kind))
    return out


# Shapes seen in the wild or aimed at handlers in the wild: (id, overrides, why). Objects and arrays in
# string fields, and operator-shaped values that a handler passing the body to a document store's
# query or ``$set`` would execute (NoSQL injection), and keys that poison JavaScript objects.
_WILD: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("prompt/callid-object", {"callid": {"id": "1"}}, "an object where the callid string belongs"),
    ("prompt/mobile-array", {"mobile": ["13800138000"]}, "an array where the mobile string belongs"),
    (
        "prompt/callid-operator",
        {"callid": {"$ne": None}},
        'a query operator as callid: {"$ne": null} matches every call',
    ),
    ("prompt/mobile-operator", {"mobile": {"$gt": ""}}, 'a query operator as mobile: {"$gt": ""} matches every number'),
    (
        "failure/callid-operator",
        {"callid": {"$ne": None}},
        'a query operator as callid: {"$ne": null} matches every call',
    ),
    ("keypress/keypress-object", {"keypress": {"key": "1"}}, "an object where the keypress string belongs"),
)
_EXTRA_KEYS: tuple[tuple[str, object, str], ...] = (
    ("_id", {"$oid": "000000000000000000000000"}, "_id overwrites a document store's own key when the body is saved"),
    ("__proto__", {"admin": True}, "__proto__ poisons the prototype of JavaScript objects merged from the body"),
    ("constructor", {"prototype": {"admin": True}}, "constructor.prototype poisons JavaScript objects too"),
)


def _seen_in_the_wild(stream: Stream) -> list[Case]:
    """Wrong shapes aimed at how handlers store callbacks (CONTRACT.md rule 3: questionable)."""
    out = []
    for case_id, overrides, why in _WILD:
        kind = kind_named(case_id.partition("/")[0])
        out.append(_robust(case_id, encode(stream(case_id).build(kind, **overrides)), why, kind))
    for key, value, why in _EXTRA_KEYS:
        case_id = f"prompt/extra-key-{key.strip('_').replace('_', '-') or 'id'}"
        out.append(_robust(case_id, encode(stream(case_id).prompt(**{key: value})), why, PROMPT))
    return out


@lru_cache(maxsize=1)
def _deeply_nested() -> bytes:
    return b"[" * DEEP_NESTING + b"]" * DEEP_NESTING
