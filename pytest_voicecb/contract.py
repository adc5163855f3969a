"""The provider's callback contract in code: the one place that decides what is valid.

Everything else in pytest-voicecb (the payload factory, the malformed corpus, the recording server,
the reply assertions and the conformance suite) asks this module, so a rule changes in one place.
The rules follow CONTRACT.md: every callback field is a JSON string except ``failure_code`` (a JSON
number), unknown extra fields are accepted, and what the provider never documented (what an
unanswered call's times hold) is accepted in every documented-as-seen shape.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator
from pydantic_core import from_json

from pytest_voicecb.values import DEFAULT_PATH, JSON_CONTENT_TYPE

if TYPE_CHECKING:  # the factory builds on this module: its type only, so imports run one way
    from pytest_voicecb.factory import PayloadFactory
    from pytest_voicecb.values import Variant

__all__ = [
    "ANSWERED",
    "CALLBACK_MODELS",
    "DEFAULT_PATH",
    "FAILURE_CODES",
    "JSON_CONTENT_TYPE",
    "KINDS",
    "MAX_BODY_SIZE",
    "OUTCOMES",
    "RESULTS",
    "SHORT_NAMES",
    "Callback",
    "CallbackError",
    "CallbackKind",
    "CodeCallback",
    "FailureCallback",
    "FailureCode",
    "KeypressCallback",
    "Problem",
    "PromptCallback",
    "ReplyBody",
    "ReplyContractError",
    "encode",
    "error_reply",
    "extra_kinds",
    "input_classes",
    "kind_info",
    "kind_named",
    "ok_reply",
    "parse_callback",
    "parse_reply",
    "registered_kinds",
]

PROMPT = "voiceprompt_callback"
CODE = "voicecode_callback"
KEYPRESS = "voicekey_callback"
FAILURE = "voice_failure_callback"
KINDS: tuple[str, ...] = (PROMPT, CODE, KEYPRESS, FAILURE)
"""The four documented top-level keys, in the order the provider documents them (``registered_kinds()``
lists every kind registered, extra ones included)."""

ANSWERED: Final = "0"
"""The ``result`` of a call the callee answered."""
RESULTS: dict[str, str] = {ANSWERED: "answered", "1": "not answered", "2": "call error"}
"""The documented values of a call's ``result`` string: the one place they are written."""

OUTCOMES: dict[str, str] = {result: words.replace(" ", "-") for result, words in RESULTS.items()}
"""The outcome each ``result`` names, as it is spelled in check ids and input classes (``prompt/not-answered``)."""

MAX_BODY_SIZE = 1024 * 1024
"""Bodies larger than this (1 MiB) are refused before parsing; real callbacks are under 1 KiB."""

# DEFAULT_PATH and JSON_CONTENT_TYPE are facts of the contract, defined in the leaf module ``values`` so
# that the command line can name them without importing pydantic; re-exported here.


class FailureCode(NamedTuple):
    """One documented ``failure_code``: the provider's Chinese text for it, the ``failure_reason`` the
    factory sends with the code (CONTRACT.md says what each code means in English)."""

    reason: str

    @property
    def meaning(self) -> str:
        """Deprecated (read nowhere; CONTRACT.md lists the meanings): the code's meaning in English."""
        warnings.warn(
            "FailureCode.meaning is deprecated and goes in the next release: CONTRACT.md lists what each "
            "failure_code means",
            DeprecationWarning,
            stacklevel=2,
        )
        return _DEPRECATED_MEANINGS.get(self.reason, "")


FAILURE_CODES: dict[int, FailureCode] = {
    1: FailureCode("关机"),
    2: FailureCode("占线"),
    3: FailureCode("不在服务区"),
    4: FailureCode("欠费"),
    5: FailureCode("无人接听"),
    6: FailureCode("暂时无法接通"),
    7: FailureCode("停机"),
    8: FailureCode("空号"),
    9: FailureCode("线路忙"),
    10: FailureCode("用户忙"),
    11: FailureCode("其他"),
    12: FailureCode("呼叫受限"),
    13: FailureCode("号码已暂停服务"),
    15: FailureCode("号码不存在"),
    16: FailureCode("来电提醒"),
    17: FailureCode("号码已过期"),
    18: FailureCode("网络忙"),
    19: FailureCode("未开通语音功能"),
    20: FailureCode("无应答"),
    22: FailureCode("系统忙"),
    23: FailureCode("号码多拨了0"),
    24: FailureCode("改号"),
    25: FailureCode("未开通秘书服务"),
    26: FailureCode("呼叫助理"),
    27: FailureCode("暂时无法接通"),
    28: FailureCode("未接来电提醒"),
    29: FailureCode("语音信箱"),
    30: FailureCode("号码错误"),
    31: FailureCode("号码未启用"),
}
"""Every documented ``failure_code`` (14 and 21 are not listed by the provider)."""

_DEPRECATED_MEANINGS: dict[str, str] = {
    "关机": "switched off",
    "占线": "line busy",
    "不在服务区": "out of coverage",
    "欠费": "in arrears",
    "无人接听": "no answer",
    "暂时无法接通": "temporarily unreachable",
    "停机": "suspended",
    "空号": "number not in service",
    "线路忙": "circuits busy",
    "用户忙": "user busy",
    "其他": "other",
    "呼叫受限": "call restricted",
    "号码已暂停服务": "number suspended",
    "号码不存在": "number does not exist",
    "来电提醒": "missed-call alert",
    "号码已过期": "number expired",
    "网络忙": "network busy",
    "未开通语音功能": "voice not enabled",
    "无应答": "no response",
    "系统忙": "system busy",
    "号码多拨了0": "extra leading zero",
    "改号": "number changed",
    "未开通秘书服务": "secretary service not enabled",
    "呼叫助理": "call assistant",
    "未接来电提醒": "missed-call reminder",
    "语音信箱": "voicemail",
    "号码错误": "wrong number",
    "号码未启用": "not in use",
}
"""What ``FailureCode.meaning`` returns until it goes (a release after issue 20)."""


Digits = Annotated[StrictStr, Field(pattern=r"^[0-9]+$")]
DigitsOrEmpty = Annotated[StrictStr, Field(pattern=r"^[0-9]*$")]
NonEmpty = Annotated[StrictStr, Field(min_length=1)]


class Callback(BaseModel):
    """Fields every callback kind carries. Subclasses set ``kind``, the envelope's top-level key."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    kind: ClassVar[str]

    call_from: DigitsOrEmpty
    callid: NonEmpty
    mobile: Digits
    nationcode: Digits

    def envelope(self) -> dict[str, Any]:
        """The callback as the provider sends it: ``{kind: {field: value, ...}}``."""
        return {self.kind: self.model_dump()}


if TYPE_CHECKING:
    Result = str
else:
    Result = Literal[tuple(RESULTS)]  # Literal["0", "1", "2"], from the one table of results


class _CallStatus(Callback):
    """The nine string fields of a call's status, shared by prompt and code callbacks."""

    result: Result
    accept_time: DigitsOrEmpty
    end_calltime: DigitsOrEmpty
    fee: DigitsOrEmpty
    start_calltime: Digits

    @property
    def answered(self) -> bool:
        return self.result == ANSWERED

    @model_validator(mode="after")
    def _times_agree(self) -> _CallStatus:
        # Spelled out rather than a loop: this runs for every prompt and code callback parsed.
        start = int(self.start_calltime)
        accept = int(self.accept_time) if self.accept_time else 0
        end = int(self.end_calltime) if self.end_calltime else 0
        if self.result == ANSWERED:
            if not (accept and end and self.fee):
                raise ValueError('an answered call (result "0") needs accept_time, end_calltime and fee set')
            if not start <= accept <= end:
                raise ValueError(
                    "times out of order: need start_calltime <= accept_time <= end_calltime, got "
                    f"{self.start_calltime} / {self.accept_time} / {self.end_calltime}"
                )
        elif end and end < start:
            raise ValueError(f"end_calltime {self.end_calltime} is before start_calltime {self.start_calltime}")
        return self


class PromptCallback(_CallStatus):
    """``voiceprompt_callback``: how a voice notification went (the seed document)."""

    kind: ClassVar[str] = PROMPT


class CodeCallback(_CallStatus):
    """``voicecode_callback``: how a voice verification code went."""

    kind: ClassVar[str] = CODE


class KeypressCallback(Callback):
    """``voicekey_callback``: the callee pressed a key during the call."""

    kind: ClassVar[str] = KEYPRESS
    keypress: Annotated[StrictStr, Field(pattern=r"^[0-9*#]+$")]


class FailureCallback(Callback):
    """``voice_failure_callback``: why a call failed. ``failure_code`` is a JSON number."""

    kind: ClassVar[str] = FAILURE
    failure_code: Annotated[StrictInt, Field(ge=1)]
    failure_reason: StrictStr


@dataclass(frozen=True)
class CallbackKind:
    """One callback kind, every fact about it in one place: everything that lists kinds reads this.

    ``key`` is the envelope's top-level key, ``model`` its contract model (the field lists come from it),
    ``short`` its name in ids and on the command line, ``display`` its name in sentences; ``outcomes``
    maps its ``result`` values to outcome names (``OUTCOMES`` for the call-status kinds, empty for a kind
    without a result); ``steering`` names the fields a strategy or factory draws the others to agree with;
    ``build(factory, overrides)`` returns a valid callback object (the fields, overrides applied), and
    ``variants(factory, kind, build)`` the kind's own documented variants (``build(**overrides)`` builds
    an envelope of this kind).
    """

    key: str
    model: type[Callback]
    short: str
    display: str
    build: Callable[[PayloadFactory, dict[str, Any]], dict[str, Any]] = field(repr=False)
    variants: Callable[[PayloadFactory, CallbackKind, Callable[..., dict[str, Any]]], list[Variant]] = field(repr=False)
    outcomes: Mapping[str, str] = field(default_factory=dict)
    steering: frozenset[str] = frozenset({"nationcode"})


# The hooks of the documented kinds: each calls the factory's builder of its shape (the factory is handed
# in, so this module never imports it).
def _call_status(factory: PayloadFactory, overrides: dict[str, Any]) -> dict[str, Any]:
    return factory.call_status_fields(overrides)


def _call_status_variants(factory: PayloadFactory, kind: CallbackKind, build: Callable[..., Any]) -> list[Variant]:
    return factory.call_status_variants(kind, build)


def _keypress(factory: PayloadFactory, overrides: dict[str, Any]) -> dict[str, Any]:
    return factory.keypress_fields(overrides)


def _keypress_variants(factory: PayloadFactory, kind: CallbackKind, build: Callable[..., Any]) -> list[Variant]:
    return factory.keypress_variants(kind, build)


def _failure(factory: PayloadFactory, overrides: dict[str, Any]) -> dict[str, Any]:
    return factory.failure_fields(overrides)


def _failure_variants(factory: PayloadFactory, kind: CallbackKind, build: Callable[..., Any]) -> list[Variant]:
    return factory.failure_variants(kind, build)


def _call_status_kind(key: str, model: type[Callback], short: str, display: str) -> CallbackKind:
    """A kind reporting a call's status: a ``result`` with every outcome, drawn to agree with it."""
    steering = frozenset({"result", "nationcode"})
    return CallbackKind(key, model, short, display, _call_status, _call_status_variants, OUTCOMES, steering)


_BUILT_IN: tuple[CallbackKind, ...] = (
    _call_status_kind(PROMPT, PromptCallback, "prompt", "prompt"),
    _call_status_kind(CODE, CodeCallback, "code", "voice code"),
    CallbackKind(KEYPRESS, KeypressCallback, "keypress", "key press", _keypress, _keypress_variants),
    CallbackKind(
        FAILURE,
        FailureCallback,
        "failure",
        "failure callback",
        _failure,
        _failure_variants,
        steering=frozenset({"failure_code", "nationcode"}),
    ),
)
_REGISTRY: dict[str, CallbackKind] = {kind.key: kind for kind in _BUILT_IN}
_REGISTRY_LOCK = threading.Lock()

CALLBACK_MODELS: dict[str, type[Callback]] = {}
"""Each registered kind's model by its key (a view of the registry, kept in step with it)."""
SHORT_NAMES: dict[str, str] = {}
"""Short names for the registered kinds, as used in variant and check ids and on the command line."""


def _sync() -> None:
    """Bring the public views of the registry in step with it (in place: importers hold these dicts)."""
    CALLBACK_MODELS.clear()
    CALLBACK_MODELS.update({key: kind.model for key, kind in _REGISTRY.items()})
    SHORT_NAMES.clear()
    SHORT_NAMES.update({kind.short: key for key, kind in _REGISTRY.items()})


_sync()


def registered_kinds() -> tuple[CallbackKind, ...]:
    """Every registered kind, in the order the provider documents them (extra kinds after)."""
    return tuple(_REGISTRY.values())


def kind_info(name: str) -> CallbackKind:
    """The registered kind a short or full name stands for; ``ValueError`` naming the known ones otherwise."""
    found = _REGISTRY.get(SHORT_NAMES.get(name, name)) if isinstance(name, str) else None
    if found is None:
        choices = ", ".join(f"{kind.short} ({kind.key})" for kind in _REGISTRY.values())
        raise ValueError(f"unknown callback kind {name!r}; expected one of {choices}")
    return found


@contextmanager
def extra_kinds(*kinds: CallbackKind) -> Iterator[None]:
    """Register ``kinds`` for the duration of a ``with`` block, then restore the registry as it was.

    What a new kind needs, and nothing else: the factory, the corpus, the strategies and the conformance
    suite read the registry. A key or short name already registered is a ``ValueError``.
    """
    with _REGISTRY_LOCK:
        saved = dict(_REGISTRY)
        for kind in kinds:
            if kind.key in _REGISTRY or kind.short in SHORT_NAMES:
                raise ValueError(f"callback kind {kind.key!r} ({kind.short}) is registered already")
            _REGISTRY[kind.key] = kind
            _sync()
    try:
        yield
    finally:
        with _REGISTRY_LOCK:
            _REGISTRY.clear()
            _REGISTRY.update(saved)
            _sync()


class ReplyBody(BaseModel):
    """A handler's answer: ``{"result": <number>, "errmsg": <string>}``; 0 means success."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    result: StrictInt
    errmsg: StrictStr

    @property
    def ok(self) -> bool:
        return self.result == 0


class Problem(NamedTuple):
    """One thing wrong with a body: where (a JSON path such as ``$.voiceprompt_callback.fee``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class _ContractProblems:
    """Shared shape of both errors: a headline and every problem found."""

    problems: tuple[Problem, ...]

    def _init(self, headline: str, problems: list[Problem]) -> str:
        self.problems = tuple(problems)
        lines = [f"{headline}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"]
        lines += [f"  - {p}" for p in problems]
        return "\n".join(lines)


class CallbackError(_ContractProblems, ValueError):
    """A callback body that breaks the contract; ``problems`` lists every one with its JSON path."""

    def __init__(self, problems: list[Problem], kind: str | None = None) -> None:
        self.kind = kind
        super().__init__(self._init(f"invalid {kind or 'callback'}", problems))


class ReplyContractError(_ContractProblems, AssertionError):
    """A handler reply that breaks the contract; an AssertionError so it reads as a test failure."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(self._init("reply breaks the contract", problems))


def ok_reply() -> dict[str, Any]:
    """The success reply the contract asks of a handler."""
    return {"result": 0, "errmsg": "OK"}


def error_reply(errmsg: str, result: int = 1) -> dict[str, Any]:
    """A contract-shaped failure reply."""
    return {"result": result, "errmsg": errmsg}


def encode(payload: Any) -> bytes:
    """Bytes as the provider sends them: compact JSON, UTF-8, non-ASCII kept as is."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def parse_callback(body: bytes | bytearray | str | Mapping[str, Any], *, max_size: int = MAX_BODY_SIZE) -> Callback:
    """Validate a callback body (raw bytes, text, or already-decoded JSON) and return its model.

    Raises ``CallbackError`` listing every problem; nothing else escapes, whatever the input.
    """
    data = _decode(body, max_size, CallbackError)
    if not isinstance(data, dict):
        raise CallbackError([Problem("$", f"must be a JSON object, got {_describe(data)}")])
    kinds = [key for key in data if key in CALLBACK_MODELS]
    if not kinds:
        found = ", ".join(repr(k) for k in list(data)[:5]) or "none"
        raise CallbackError(
            [Problem("$", f"no known callback key (expected one of {', '.join(CALLBACK_MODELS)}; found {found})")]
        )
    if len(kinds) > 1:
        raise CallbackError([Problem("$", f"holds {len(kinds)} callback kinds ({', '.join(kinds)}); expected one")])
    kind = kinds[0]
    inner = data[kind]
    if not isinstance(inner, dict):
        raise CallbackError([Problem(f"$.{kind}", f"must be a JSON object, got {_describe(inner)}")], kind)
    try:
        return CALLBACK_MODELS[kind].model_validate(inner)
    except ValidationError as exc:
        raise CallbackError(_problems(exc, f"$.{kind}"), kind) from None
    except (ValueError, TypeError, RecursionError) as exc:  # pragma: no cover - defensive
        raise CallbackError([Problem(f"$.{kind}", str(exc))], kind) from None


def parse_reply(body: bytes | bytearray | str | Mapping[str, Any], *, max_size: int = MAX_BODY_SIZE) -> ReplyBody:
    """Validate a handler's reply body and return it; raises ``ReplyContractError`` otherwise.

    Only the shape is checked here: ``{"result": 1, "errmsg": "..."}`` is a valid (failure) reply.
    """
    data = _decode(body, max_size, ReplyContractError)
    if not isinstance(data, dict):
        raise ReplyContractError([Problem("$", f"must be a JSON object, got {_describe(data)}")])
    try:
        return ReplyBody.model_validate(data)
    except ValidationError as exc:
        raise ReplyContractError(_problems(exc, "$")) from None


def _decode(body: object, max_size: int, error: type[CallbackError] | type[ReplyContractError]) -> Any:
    """Turn any body into decoded JSON, or raise ``error`` saying why it is not a JSON document."""
    if isinstance(body, (bytes, bytearray)):
        pass  # the common case first: an isinstance check against the Mapping ABC is slow
    elif isinstance(body, Mapping):
        return dict(body)
    elif isinstance(body, str):
        try:
            body = body.encode("utf-8")
        except UnicodeEncodeError:
            raise error([Problem("$", "text holds lone surrogates, which UTF-8 cannot carry")]) from None
    else:
        raise error([Problem("$", f"expected bytes, str or a mapping, got {type(body).__name__}")])
    if len(body) > max_size:
        raise error([Problem("$", f"body is {len(body):,} bytes, over the {max_size:,}-byte limit")])
    try:
        # The fast path: the JSON parser itself refuses invalid UTF-8, a BOM and UTF-16.
        return from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise error([Problem("$", _why_not_json(bytes(body), exc))]) from None


def _why_not_json(body: bytes, exc: ValueError) -> str:
    """Why ``body`` did not parse, said about the body rather than the parser's position."""
    if not body.strip():
        return "body is empty" if not body else "body is only whitespace"
    if body.startswith(b"\xef\xbb\xbf"):
        return "body starts with a UTF-8 byte-order mark; send plain UTF-8"
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(body) > 1 and 0 in body[:2]):
        return "body looks like UTF-16; the contract is UTF-8"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not valid UTF-8 (byte {bad.start}: {body[bad.start : bad.start + 1]!r})"
    return f"not JSON: {exc}; body starts {_preview(text)}"


def _problems(exc: ValidationError, root: str) -> list[Problem]:
    """Pydantic's errors, said in the contract's words with JSON paths."""
    problems = []
    for err in exc.errors(include_url=False):
        path = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        problems.append(Problem(path, _say(err)))
    return problems


_JSON_TYPE_OF = {"string": "a JSON string", "int": "a JSON number (an integer)"}


def _say(err: Any) -> str:
    kind, got = err["type"], err.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind in ("string_type", "int_type"):
        expected = _JSON_TYPE_OF["string" if kind == "string_type" else "int"]
        return f"must be {expected}, got {_describe(got)}"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']}, got {_describe(got)}"
    if kind == "string_pattern_mismatch":
        pattern = err["ctx"]["pattern"]
        words = "keypad characters (0-9, * or #)" if "#" in pattern else "decimal digits"
        if pattern.endswith("*$"):
            words += ' or ""'
        return f"must be {words}, got {_describe(got)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "greater_than_equal":
        return f"must be a positive integer, got {_describe(got)}"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    return f"{err['msg']}, got {_describe(got)}"


def _describe(value: object) -> str:
    """A JSON value described for a person: its JSON type and a short rendering."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {_preview(value)}"
    if isinstance(value, list):
        return f"an array of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"an object with keys {', '.join(map(repr, list(value)[:5]))}" if value else "an empty object"
    return type(value).__name__


def _preview(text: str, limit: int = 60) -> str:
    return json.dumps(text[:limit] + ("…" if len(text) > limit else ""), ensure_ascii=False)


def input_classes() -> tuple[str, ...]:
    """What a delivery can be about, as ``effects_on`` names it: each call status kind with each outcome
    (``prompt/answered`` ... ``code/call-error``), then ``keypress`` and ``failure``."""
    found: list[str] = []
    for kind in _REGISTRY.values():
        found += [f"{kind.short}/{outcome}" for outcome in kind.outcomes.values()] or [kind.short]
    return tuple(found)


def kind_named(name: str, *, short: bool = False) -> str:
    """The kind a short or full name stands for (``"prompt"`` -> ``"voiceprompt_callback"``).

    With ``short=True`` the short name is returned instead. Raises ``ValueError`` for anything else.
    """
    kind = kind_info(name)
    return kind.short if short else kind.key
