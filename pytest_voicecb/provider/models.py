"""The simulator's state: sends, calls, their scripted outcomes and the callbacks they owe.

``SimulatorBackend`` is what both send APIs call once they have parsed and authenticated a request. It
opens no socket and never sleeps: times come from the clock, callids and RequestIds from a stream
derived from the seed, and callback bodies from ``PayloadFactory``. Each accepted send becomes a
``Call`` whose ``Delivery`` items (status, key presses, failure) are handed to ``schedule`` for the
dispatcher to post when they fall due.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from pytest_voicecb import _arguments, _deprecation
from pytest_voicecb._text import preview
from pytest_voicecb.contract import CODE, FAILURE, FAILURE_CODES, KEYPRESS, PROMPT, encode
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.provider.exceptions import (
    CalledNumberInvalid,
    DeliveryFrequencyLimit,
    InsufficientBalance,
    InternalError,
    SendApiError,
    ServiceSuspended,
    error_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_voicecb.client import Reply
    from pytest_voicecb.conformance.verdict import Verdict
    from pytest_voicecb.provider.clock import Clock

__all__ = [
    "HELD",
    "MAGIC_NUMBERS",
    "Attempt",
    "Call",
    "CallOutcome",
    "Delivery",
    "Send",
    "SimulatorBackend",
    "split_e164",
]

_log = logging.getLogger("pytest_voicecb.provider")

Status = Literal["answered", "no_answer", "call_error", "held"]

DIAL_DELAY = 1
"""Seconds from an accepted send to the provider starting to dial (``start_calltime``)."""
REPORT_DELAY = 1
"""Seconds from the end of a call to its status callback falling due."""
DEFAULT_RING, DEFAULT_TALK, NO_ANSWER_RING, ERROR_RING = 8, 24, 60, 2
DEFAULT_KEEP = 10_000
"""Calls the simulator remembers (the latest ones): a long test run fits, a week-long standalone stays flat."""


@dataclass(frozen=True)
class CallOutcome:
    """What happens to a call (and to the send that places it).

    ``status``: answered, no_answer (``result "1"``), call_error (``result "2"``, with a
    ``voice_failure_callback`` carrying ``failure_code``) or held (no callback until ``decide``).
    ``keys``: key presses during an answered call.
    ``duplicates``: extra deliveries of the status callback after it was acknowledged. ``refuse``: the
    send itself fails with this error. ``delay`` (real seconds) and ``drop`` act on the send's HTTP reply.
    """

    status: Status = "answered"
    ring: int = DEFAULT_RING
    talk: int = DEFAULT_TALK
    keys: tuple[str, ...] = ()
    failure_code: int | None = None
    duplicates: int | None = None
    refuse: SendApiError | None = None
    delay: float = 0.0
    drop: bool = False

    def describe(self) -> str:
        if self.refuse is not None:
            return f"send refused with {self.refuse.code}"
        if self.drop:
            return "connection dropped"
        text = {
            "answered": f"answered after {self.ring} s, {self.talk} s talk",
            "no_answer": f"not answered ({self.ring} s ringing)",
            "call_error": f"call error, failure_code {self.failure_code}",
            "held": "held: waiting for a decision (provider.decide or the console's buttons)",
        }[self.status]
        if self.keys:
            text += f", key{'s' if len(self.keys) > 1 else ''} {' '.join(self.keys)} pressed"
        if self.duplicates:
            text += f", status callback sent {self.duplicates + 1} times"
        return text + (f", reply delayed {self.delay:g} s" if self.delay else "")


ANSWERED = CallOutcome()
HELD = CallOutcome("held")


def _magic() -> dict[str, CallOutcome]:
    table = {
        "+8613900000000": ANSWERED,
        "+8613900000001": CallOutcome("no_answer", ring=NO_ANSWER_RING),
        "+8613900000002": CallOutcome("call_error", ring=ERROR_RING, failure_code=11),
        "+8613900000003": CallOutcome(keys=("1",)),
        "+8613900000004": CallOutcome(keys=("2",)),
        "+8613900000005": CallOutcome(duplicates=1),
        "+8613900000006": CallOutcome(ring=40, talk=425),
        "+8613900000007": HELD,
        "+8613900000201": CallOutcome(refuse=DeliveryFrequencyLimit()),
        "+8613900000202": CallOutcome(refuse=InsufficientBalance()),
        "+8613900000203": CallOutcome(refuse=ServiceSuspended()),
        "+8613900000204": CallOutcome(refuse=InternalError()),
    }
    for code in FAILURE_CODES:
        table[f"+86139000001{code:02d}"] = CallOutcome("call_error", ring=ERROR_RING, failure_code=code)
    return table


MAGIC_NUMBERS: dict[str, CallOutcome] = _magic()
"""Numbers that choose their call's outcome (card-network test cards for voice): see the package docstring."""

# Country calling codes form a prefix code: 1 and 7 are one digit, these are two, every other is three.
_TWO_DIGIT_CODES = frozenset(str(code) for code in (20, 27, *range(30, 35), 36, 39, 40, 41, *range(43, 50)))
_TWO_DIGIT_CODES |= frozenset(str(code) for code in (*range(51, 59), *range(60, 67), 81, 82, 84, 86, 90, 91, 92))
_TWO_DIGIT_CODES |= frozenset(("93", "94", "95", "98"))


def split_e164(number: object) -> tuple[str, str]:
    """``"+8613900000001"`` -> ``("86", "13900000001")``; ``CalledNumberInvalid`` for anything else.

    Checks the E.164 shape (``+``, 8 to 15 digits), and for China a mobile's 11 digits starting with 1.
    """
    if not isinstance(number, str) or not number.startswith("+"):
        raise CalledNumberInvalid(f"CalledNumber must be E.164 (+[country code][number]), got {_short(number)}")
    digits = number[1:]
    if not (digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 15) or digits[0] == "0":
        raise CalledNumberInvalid(f"CalledNumber {_short(number)} is not an E.164 number (+ and 8 to 15 digits)")
    size = 1 if digits[0] in "17" else 2 if digits[:2] in _TWO_DIGIT_CODES else 3
    nationcode, mobile = digits[:size], digits[size:]
    if nationcode == "86" and not (len(mobile) == 11 and mobile[0] == "1"):
        raise CalledNumberInvalid(f"CalledNumber {_short(number)} is not a mainland China mobile number")
    return nationcode, mobile


def _short(value: object) -> str:
    return preview(value if isinstance(value, str) else repr(value), 60)


@dataclass(frozen=True)
class Attempt:
    """One try at delivering a callback: when, what came back (``reply`` or ``error``), the verdict."""

    number: int
    at: float
    body: bytes
    reply: Reply | None
    error: str | None
    verdict: Verdict | None
    acknowledged: bool
    elapsed: float

    def summary(self) -> str:
        """One line: the attempt, its outcome, the reply (or why there was none) and the contract's complaints."""
        if self.reply is None:
            what = f"no reply: {self.error}"
        else:
            what = f"HTTP {self.reply.status} {preview(self.reply.body, 120)}"
        problems = "; ".join(self.verdict.problems) if self.verdict and self.verdict.problems else ""
        mark = "acknowledged" if self.acknowledged else "FAILED"
        return f"attempt {self.number}: {mark}, {what}" + (f" ({problems})" if problems else "")


@dataclass(eq=False)
class Delivery:
    """A callback the provider owes the integrator: its payload, when it falls due, every attempt."""

    seq: int
    call: Call
    kind: str
    payload: dict[str, Any]
    due: float
    duplicate: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    gave_up: bool = False
    generation: int = 0
    """The backend's generation (reset count) it was made in: a delivery from before a reset is never sent."""

    @property
    def body(self) -> bytes:
        return encode(self.payload)

    @property
    def callid(self) -> str:
        return self.call.callid

    @property
    def fields(self) -> dict[str, Any]:
        inner = self.payload.get(self.kind)
        return inner if isinstance(inner, dict) else {}

    @property
    def state(self) -> Literal["pending", "acknowledged", "failed"]:
        """``acknowledged`` once an attempt succeeded, ``failed`` once the retries ran out, else ``pending``."""
        if self.attempts and self.attempts[-1].acknowledged:
            return "acknowledged"
        return "failed" if self.gave_up else "pending"

    @property
    def acknowledged(self) -> bool:
        return self.state == "acknowledged"

    def summary(self) -> str:
        dup = " (duplicate)" if self.duplicate else ""
        line = f"#{self.seq} {self.kind}{dup} for callid {self.callid} to {self.call.number}: {self.state}"
        return line + "".join(f"\n    {attempt.summary()}" for attempt in self.attempts)


@dataclass(eq=False)
class Call:
    """An accepted send: its callid, number, what it asked for, its outcome and the callbacks it owes."""

    callid: str
    api: Literal["3.0", "legacy"]
    action: str
    nationcode: str
    mobile: str
    sent_at: float
    outcome: CallOutcome
    request_id: str = ""
    session_context: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    kind: str = PROMPT
    """The status callback's kind: ``voicecode_callback`` for a voice code, else ``voiceprompt_callback``."""
    deliveries: list[Delivery] = field(default_factory=list)
    decided_at: float | None = None
    """When a held call was decided (``SimulatorBackend.decide``); None for a call never held."""

    @property
    def number(self) -> str:
        return f"+{self.nationcode}{self.mobile}"

    @property
    def held(self) -> bool:
        """True while the call waits for ``decide``: it owes no callback yet."""
        return self.outcome.status == "held"

    def summary(self) -> str:
        return f"{self.action} to {self.number}, callid {self.callid}: {self.outcome.describe()}"


@dataclass(frozen=True)
class Send:
    """One request to a send API, accepted (``call``) or refused (``error``)."""

    api: Literal["3.0", "legacy"]
    action: str
    at: float
    params: dict[str, Any]
    request_id: str
    call: Call | None = None
    error: SendApiError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if self.error is not None:
            return f"{self.api} {self.action} refused: {self.error.code}: {self.error.text}"
        assert self.call is not None
        return f"{self.api} {self.action} accepted: {self.call.summary()}"


@dataclass
class _Rule:
    number: str | None
    outcome: CallOutcome
    times: int | None

    def matches(self, nationcode: str, mobile: str) -> bool:
        if self.number is None:
            return True
        if self.number.startswith("+"):
            return self.number == f"+{nationcode}{mobile}"
        return self.number == mobile


def normalize_number(number: object) -> str | None:
    """A number to script: E.164 (``+86...``) or national digits; spaces, dashes and dots are ignored."""
    if number is None:
        return None
    if not isinstance(number, str):
        raise TypeError(f"a number is a string such as '+8613900000001', got {number!r}")
    text = "".join(ch for ch in number if ch not in " -.()")
    body = text[1:] if text.startswith("+") else text
    if not (body.isascii() and body.isdigit() and 4 <= len(body) <= 15):
        raise ValueError(f"{number!r} is not a phone number: give E.164 ('+8613900000001') or national digits")
    return text


class SimulatorBackend:
    """Sends, calls and scripts, shared by both send APIs; thread-safe (the API server is threaded).

    ``schedule`` receives each new call's deliveries, ``on_send`` each send (once, outside the lock).
    ``keep``: how many calls (and sends) are remembered, the latest ones. ``duplicates`` extra status
    callbacks are sent for every call (0 by default); ``failure_first`` puts a failed call's
    ``voice_failure_callback`` before its status callback.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        seed: object = None,
        call_from: str = "",
        duplicates: int = 0,
        failure_first: bool = False,
        schedule: Callable[[list[Delivery]], None] | None = None,
        on_send: Callable[[Send], None] | None = None,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self.clock = clock
        self.on_send = on_send
        self.hook_errors = 0
        """How many times ``on_send`` raised (each logged; the send itself was answered as usual)."""
        self.keep = _arguments.whole("keep", keep, minimum=1)
        self.seed = seed
        self.call_from = call_from
        self.duplicates = _arguments.whole("duplicates", duplicates, maximum=100)
        self.failure_first = bool(failure_first)
        self.schedule = schedule
        self._lock = threading.RLock()
        self.generation = 0
        self.reset()

    def reset(self, seed: object = None) -> None:
        """Forget every send, call and script, and restart the id and payload streams from the seed
        (``seed``, when given, replaces it)."""
        with self._lock:
            if seed is not None:
                self.seed = seed
            self.factory = PayloadFactory((self.seed, "provider"))
            self._ids = random.Random(f"{self.seed!r}/provider-ids")
            self.rules: list[_Rule] = []
            self._seq = 0
            self.clear()

    def clear(self) -> None:
        """Forget every send, call and delivery; scripts and the id and payload streams go on. A delivery
        made before is never sent after (the generation moves)."""
        with self._lock:
            self.generation += 1
            self.sends: deque[Send] = deque(maxlen=self.keep)
            self.calls: dict[str, Call] = {}
            self.deliveries: deque[Delivery] = deque()
            self.forgotten = 0
            self.counts = {"sends": 0, "calls": 0}
            """Sends and calls since the last reset or clear, forgotten ones included."""

    # -- scripting -------------------------------------------------------------------------------

    def script(self, number: str | None, outcome: CallOutcome, times: int | None = None) -> _Rule:
        """Give sends to ``number`` (any number when None) ``outcome``, for the next ``times`` sends (all
        when None); returns the rule, for ``amend``."""
        if times is not None:
            times = _arguments.whole("times", times, minimum=1)
        with self._lock:
            rule = _Rule(normalize_number(number), outcome, times)
            self.rules.append(rule)
            return rule

    def amend(self, rule: _Rule, **changes: Any) -> None:
        """Change fields of a scripted rule's outcome (``duplicates``, ``delay``): chained verbs compose."""
        with self._lock:
            rule.outcome = replace(rule.outcome, **changes)

    def outcome_for(self, nationcode: str, mobile: str) -> CallOutcome:
        """The outcome of the next send to this number (using up one ``times`` of its script)."""
        with self._lock:
            ordered = [r for r in self.rules if r.number is not None] + [r for r in self.rules if r.number is None]
            for rule in ordered:
                if rule.matches(nationcode, mobile):
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self.rules.remove(rule)
                    return rule.outcome
        return MAGIC_NUMBERS.get(f"+{nationcode}{mobile}", ANSWERED)

    # -- ids ---------------------------------------------------------------------------------------

    def request_id(self) -> str:
        """A RequestId (a UUID), from the seeded stream."""
        with self._lock:
            return _uuid(self._ids.getrandbits(128))

    def _callid(self, api: str) -> str:
        bits = self._ids.getrandbits(128)
        return f"{bits:032x}" if api == "legacy" else _uuid(bits)

    # -- sends -------------------------------------------------------------------------------------

    def refuse(self, api: Literal["3.0", "legacy"], action: str, params: dict[str, Any], error: SendApiError) -> Send:
        """Record a send refused before it reached a call (bad signature, missing field...)."""
        with self._lock:
            send = Send(api, action, self.clock.now(), params, self.request_id(), error=error)
            self.sends.append(send)
            self.counts["sends"] += 1
        self._report(send)
        return send

    def _keep(self, call: Call) -> None:
        """Record ``call``, forgetting the oldest calls (and their deliveries) beyond the latest ``keep``:
        memory stays flat in a long run; what was forgotten is in the CLI's ``--log``."""
        self.calls[call.callid] = call
        self.counts["calls"] += 1
        while len(self.calls) > self.keep:
            del self.calls[next(iter(self.calls))]
            self.forgotten += 1
        while self.deliveries and self.calls.get(self.deliveries[0].callid) is not self.deliveries[0].call:
            self.deliveries.popleft()

    def _report(self, send: Send) -> None:
        """``on_send``, once per send, outside the lock; its failure (a closed stdout) never fails the send."""
        if self.on_send is None:
            return
        try:
            self.on_send(send)
        except Exception as exc:
            self.hook_errors += 1
            _log.warning("on_send failed for request %s: %s: %s", send.request_id, type(exc).__name__, exc)

    def place(
        self,
        api: Literal["3.0", "legacy"],
        action: str,
        nationcode: str,
        mobile: str,
        params: dict[str, Any],
        *,
        kind: str = PROMPT,
        outcome: CallOutcome | None = None,
        session_context: str = "",
    ) -> Send:
        """Place a call (or refuse it, as its outcome says): record the send, build and schedule its callbacks."""
        fresh: list[Delivery] = []
        with self._lock:
            if outcome is None:
                outcome = self.outcome_for(nationcode, mobile)
            request_id = self.request_id()
            now = self.clock.now()
            if outcome.refuse is not None:
                send = Send(api, action, now, params, request_id, error=error_for(outcome.refuse))
            else:
                kind = CODE if kind == CODE else PROMPT
                number = (nationcode, mobile)
                call = Call(
                    self._callid(api),
                    api,
                    action,
                    *number,
                    now,
                    outcome,
                    request_id,
                    session_context,
                    dict(params),
                    kind,
                )
                self._build(call)
                self._keep(call)
                send = Send(api, action, now, params, request_id, call=call)
                fresh = list(call.deliveries)
                self.deliveries.extend(fresh)
            self.sends.append(send)
            self.counts["sends"] += 1
        if self.schedule is not None and fresh:
            self.schedule(fresh)
        self._report(send)
        return send

    def decide(self, callid: str, outcome: CallOutcome) -> list[Delivery]:
        """Give the held call ``callid`` its ``outcome`` now: build its callbacks and schedule them.

        ``KeyError`` for an unknown callid, ``ValueError`` if the call is not held (decided already, or
        placed with an outcome) or ``outcome`` is itself held or acts on the send (refuse, drop, delay).
        """
        if outcome.status == "held" or outcome.refuse is not None or outcome.drop:
            raise ValueError(f"a held call is decided with answer, no_answer, call_error or press, not {outcome!r}")
        with self._lock:
            call = self.calls.get(callid)
            if call is None:
                known = ", ".join(c.callid for c in self.calls.values() if c.held) or "none"
                raise KeyError(f"no call with callid {preview(str(callid), 80)} (held calls: {known})")
            if not call.held:
                raise ValueError(f"call {callid} is not held: {call.outcome.describe()}")
            call.outcome = outcome
            call.decided_at = self.clock.now()
            self._build(call)
            fresh = list(call.deliveries)
            self.deliveries.extend(fresh)
        if self.schedule is not None:
            self.schedule(fresh)
        return fresh

    def duplicate(self, delivery: Delivery, due: float) -> Delivery:
        """A repeat of an acknowledged ``delivery``, due at ``due`` (the provider's retry-after-success)."""
        with self._lock:
            copy = self._delivery(delivery.call, delivery.kind, delivery.payload, due, duplicate=True)
            delivery.call.deliveries.append(copy)
            if self.calls.get(delivery.callid) is delivery.call:  # a forgotten call stays forgotten
                self.deliveries.append(copy)
            return copy

    def _delivery(
        self, call: Call, kind: str, payload: dict[str, Any], due: float, *, duplicate: bool = False
    ) -> Delivery:
        self._seq += 1
        return Delivery(self._seq, call, kind, payload, due, duplicate, generation=self.generation)

    def _build(self, call: Call) -> None:
        """The callbacks of ``call``, with times on the clock and fields from the factory."""
        o = call.outcome
        if o.status == "held":
            return
        start = int(call.sent_at) + DIAL_DELAY
        common = {
            "callid": call.callid,
            "nationcode": call.nationcode,
            "mobile": call.mobile,
            "call_from": self.call_from,
        }
        out: list[tuple[str, dict[str, Any], float]] = []
        if o.status == "answered":
            accept, end = start + o.ring, start + o.ring + o.talk
            for i, key in enumerate(o.keys):
                pressed = accept + min(3 * (i + 1), max(o.talk - 1, 0))
                out.append((KEYPRESS, self.factory.keypress(keypress=key, **common), pressed))
            status = self.factory.build(
                call.kind,
                result="0",
                start_calltime=str(start),
                accept_time=str(accept),
                end_calltime=str(end),
                fee=str(-(-o.talk // 60)),
                **common,
            )
            out.append((call.kind, status, end + REPORT_DELAY))
        else:
            result = "1" if o.status == "no_answer" else "2"
            end = start + o.ring
            status = self.factory.build(call.kind, result=result, start_calltime=str(start), **common)
            status_item = (call.kind, status, float(end + REPORT_DELAY))
            items = [status_item]
            if o.failure_code is not None:
                failure = (
                    FAILURE,
                    self.factory.failure(failure_code=o.failure_code, **common),
                    float(end + REPORT_DELAY),
                )
                items = [failure, status_item] if self.failure_first else [status_item, failure]
            out += items
        for kind, payload, due in out:
            call.deliveries.append(self._delivery(call, kind, payload, float(due)))

    def status_duplicates(self, delivery: Delivery) -> int:
        """How many extra copies of this acknowledged delivery the provider sends."""
        if delivery.duplicate or delivery.kind not in (PROMPT, CODE):
            return 0
        wanted = delivery.call.outcome.duplicates
        return self.duplicates if wanted is None else wanted


def _uuid(bits: int) -> str:
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


@dataclass
class Credentials:
    """What an integrator configures: API 3.0 ``secret_id``/``secret_key`` and ``voice_sdk_appid``, the
    legacy ``sdkappid``/``appkey``. ``window``: seconds a signed timestamp may differ from the API's time."""

    secret_id: str = "AKIDvoicecbSIMULATOR0000000000000000"
    secret_key: str = "voicecb-simulator-secret-key-000"
    voice_sdk_appid: str = "1400000000"
    sdkappid: str = "1400000000"
    appkey: str = "voicecb0simulator0appkey00000000"
    window: float = 300.0


__getattr__ = _deprecation.moved("pytest_voicecb.provider.models", {"Outcome": ("CallOutcome", lambda: CallOutcome)})
