"""A local stand-in for the voice provider: send APIs that place calls, and the callbacks they owe.

``Provider`` serves, on one loopback port, API 3.0 (``vms``, ``2020-09-02``: ``SendTtsVoice``,
``SendCodeVoice``, TC3-HMAC-SHA256; point the official SDK at it with ``HttpProfile(protocol="http",
endpoint=provider.endpoint)``), the legacy ``/v5/tlsvoicesvr/...`` API (``qcloudsms_py`` senders take
``url=provider.legacy_url(...)``), and its own ``/voicecb-api/`` control API. Every accepted send becomes
a call whose callbacks (status, key presses, failure) are delivered to the integrator's target, judged
with ``conformance.judge`` and retried by a ``RetryPolicy``, on a clock the test moves::

    with Provider(target=my_wsgi_app, seed=1) as provider:
        provider.on("+8613900000001").no_answer()
        ...  # the code under test sends through the SDK
        provider.run_until_idle()
        assert provider.find_deliveries(callid=call_id)[0].acknowledged

Magic numbers pick an outcome by the number dialled (scripts from ``provider.on`` take precedence):

=====================  ==============================================================================
CalledNumber           outcome
=====================  ==============================================================================
``+8613900000000``     answered: 8 s ringing, 24 s talk, fee 1 (what any other number gets)
``+8613900000001``     not answered: status ``result "1"`` after 60 s ringing
``+8613900000002``     call error: status ``result "2"`` and ``voice_failure_callback`` code 11
``+8613900000003``     answered, the callee presses ``1`` (``voicekey_callback``)
``+8613900000004``     answered, the callee presses ``2``
``+8613900000005``     answered, the status callback is delivered twice (a duplicate)
``+8613900000006``     answered after 40 s, 425 s talk (fee 8)
``+8613900000007``     held: no callback until ``provider.decide(callid, ...)`` (or the console's buttons)
``+86139000001NN``     call error with ``failure_code`` NN (01-31, e.g. ``+8613900000108``: not in service)
``+8613900000201``     send refused: ``LimitExceeded.DeliveryFrequencyLimit`` (legacy result 1023)
``+8613900000202``     send refused: ``FailedOperation.InsufficientBalanceInVoicePackage`` (legacy 1031)
``+8613900000203``     send refused: ``UnauthorizedOperation.ServiceSuspendDueToArrears`` (legacy 1033)
``+8613900000204``     send refused: ``InternalError`` (legacy 1007)
=====================  ==============================================================================

The legacy API uses the same numbers as ``tel: {"nationcode": "86", "mobile": "13900000001"}``.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pytest_voicecb import _arguments, _deprecation, _text
from pytest_voicecb._sites import browser_request
from pytest_voicecb.matching import Matcher
from pytest_voicecb.provider.clock import Clock, ManualClock, SystemClock
from pytest_voicecb.provider.control import PREFIX as CONTROL_PREFIX
from pytest_voicecb.provider.control import ControlApi
from pytest_voicecb.provider.delivery import Dispatcher, RetryPolicy
from pytest_voicecb.provider.exceptions import SendApiError
from pytest_voicecb.provider.legacy.responses import ACTIONS as LEGACY_ACTIONS
from pytest_voicecb.provider.legacy.responses import PREFIX as LEGACY_PREFIX
from pytest_voicecb.provider.legacy.responses import LegacyApi
from pytest_voicecb.provider.models import (
    DEFAULT_KEEP,
    DEFAULT_TALK,
    DIAL_DELAY,
    MAGIC_NUMBERS,
    Attempt,
    Call,
    CallOutcome,
    Credentials,
    Delivery,
    Send,
    SimulatorBackend,
)
from pytest_voicecb.provider.script import DECISIONS, Script, decision
from pytest_voicecb.provider.v3.responses import V3Api
from pytest_voicecb.provider.wire import DEFAULT_MAX_BODY_SIZE, ApiRequest, ApiResponse, ApiServer, json_response

__all__ = [
    "MAGIC_NUMBERS",
    "Attempt",
    "Call",
    "CallOutcome",
    "Credentials",
    "Delivery",
    "ManualClock",
    "Provider",
    "RetryPolicy",
    "Script",
    "Send",
    "SendApiError",
    "SystemClock",
]


MAX_CLOCK_MOVE = 366 * 24 * 3600.0
"""The furthest ``advance``/``run_until_idle`` move the clock in one go (a year)."""


class Provider:
    """The simulator: start it (or use it as a context manager), point the code under test at it.

    ``target``: where callbacks go (a URL, a WSGI/ASGI app, ``module:attribute``, or a zero-argument
    callable marked by ``lazy_target=True`` returning one), ``path`` its callback path. ``seed``: callids,
    RequestIds and callback fields. ``clock``: ``ManualClock()`` (the default: nothing is delivered until
    ``advance``/``run_until_idle``) or ``SystemClock(scale)`` (delivered by a background thread as
    time passes). ``retry``, ``duplicates``, ``failure_first``, ``concurrency``, ``strict``: delivery
    policy. ``credentials``: what the integrator configures (defaults are fixed test values).
    ``api_time``: the send APIs' clock for signature timestamps (real time by default).
    ``on_send`` / ``on_attempt``: called once for each send and each delivery attempt (the CLI prints
    them); if one raises, it is logged and counted (``hook_errors``), the send and the delivery go on.
    ``keep``: how many calls the record holds, the latest ones (10,000 by default; older calls and their
    deliveries are forgotten, so memory stays flat in a long-running simulator).
    ``tls=True``: the APIs are served over HTTPS (the SDKs' default protocol) with a certificate from a
    throw-away test CA whose PEM file is ``ca_path`` (``pytest-voicecb[tls]``). ``cacert``: the PEM file
    of the CA an ``https://`` callback target's certificate must chain to (default: the system's CAs).
    """

    def __init__(
        self,
        target: object = None,
        *,
        path: str | None = None,
        seed: object = None,
        clock: Clock | None = None,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        duplicates: int = 0,
        failure_first: bool = False,
        concurrency: int = 4,
        strict: bool = False,
        call_from: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        api_time: Callable[[], float] = time.time,
        lazy_target: bool = False,
        on_send: Callable[[Send], None] | None = None,
        on_attempt: Callable[[Delivery, Attempt], None] | None = None,
        keep: int = DEFAULT_KEEP,
        tls: bool | ssl.SSLContext = False,
        cacert: str | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else ManualClock()
        self.credentials = credentials or Credentials()
        self.dispatcher: Dispatcher
        self.backend = SimulatorBackend(
            self.clock,
            seed=seed,
            call_from=call_from,
            duplicates=duplicates,
            failure_first=failure_first,
            schedule=self._schedule,
            on_send=on_send,
            keep=keep,
        )
        self.dispatcher = Dispatcher(
            self.backend,
            retry,
            path=path,
            concurrency=concurrency,
            strict=strict,
            on_attempt=on_attempt,
            cacert=cacert,
        )
        if target is not None:
            self.deliver_to(target, path=path, lazy=lazy_target)
        self.api_time = api_time
        self.v3 = V3Api(self.backend, self.credentials, api_time=self._api_now)
        self.legacy = LegacyApi(self.backend, self.credentials, api_time=self._api_now)
        self.control = ControlApi(self)
        self.server = ApiServer(self._handle, host=host, port=port, max_body_size=max_body_size, tls=tls)
        self._expect_undelivered = False
        self._pump: threading.Thread | None = None
        self._stop = threading.Event()

    def _api_now(self) -> float:
        return self.api_time()

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> Provider:
        """Start serving (and, on a real-time clock, delivering); returns the provider."""
        if not self.server.running:
            self._stop.clear()
            self.server.start()
            if not self.clock.manual:
                self._pump = threading.Thread(target=self._pump_loop, name="voicecb-provider-delivery", daemon=True)
                self._pump.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering, promptly: what is still owed stays in the record; an attempt in
        flight gets at most the retry policy's timeout to end (and is recorded when it does)."""
        self._stop.set()
        with self.dispatcher.changed:
            self.dispatcher.changed.notify_all()
        if self._pump is not None:
            self._pump.join(2.0)  # it wakes at least every second, and never waits for a delivery
            self._pump = None
        self.server.stop()
        self.dispatcher.close()

    def __enter__(self) -> Provider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.server.running else "not started"
        return f"Provider({where}, {len(self.backend.calls)} calls, {self.dispatcher.pending} deliveries owed)"

    def clear(self) -> None:
        """Forget what was recorded: sends, calls and the deliveries owed (a clean cut: one in flight is
        not recorded); scripts and ``expect_undelivered()`` stay. On both the provider and the
        ``CallbackServer``, ``clear`` forgets the records and ``reset`` starts over."""
        with self.dispatcher.changed:  # one step: no send or attempt lands between the two
            self.backend.clear()
            self.dispatcher.clear()

    def reset(self, seed: object = None) -> None:
        """Start over, as a provider just made with the same options: no sends, calls, deliveries or
        scripts, strict again (``seed``: a new seed for ids and callbacks); a manual clock keeps its time."""
        with self.dispatcher.changed:  # one step: no send or attempt lands between the two
            self.backend.reset(seed)
            self.dispatcher.clear()
        self._expect_undelivered = False

    # -- what to configure -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls``): the base of every API served."""
        return self.server.base_url

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``, for ``HttpProfile(protocol="http", endpoint=...)`` (with ``tls=True``: the
        default ``https`` protocol, and ``certification=provider.ca_path``)."""
        return self.url.split("://", 1)[1]

    @property
    def ca_path(self) -> str | None:
        """With ``tls=True`` (once started): the test CA's PEM file for the SDK to trust; else None."""
        return self.server.ca_path

    def legacy_url(self, action: str = "sendvoiceprompt") -> str:
        """The legacy API's URL for ``action`` (``sendvoiceprompt``, ``sendcvoice`` or ``sendtvoice``)."""
        if action not in LEGACY_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(LEGACY_ACTIONS)}, got {action!r}")
        return f"{self.url}{LEGACY_PREFIX}{action}"

    @property
    def secret_id(self) -> str:
        return self.credentials.secret_id

    @property
    def secret_key(self) -> str:
        return self.credentials.secret_key

    @property
    def voice_sdk_appid(self) -> str:
        return self.credentials.voice_sdk_appid

    @property
    def sdkappid(self) -> str:
        return self.credentials.sdkappid

    @property
    def appkey(self) -> str:
        return self.credentials.appkey

    def settings(self) -> dict[str, str]:
        """Everything an integrator's configuration needs, by name."""
        return {
            "endpoint": self.endpoint,
            "secret_id": self.secret_id,
            "secret_key": self.secret_key,
            "voice_sdk_appid": self.voice_sdk_appid,
            "sdkappid": self.sdkappid,
            "appkey": self.appkey,
            "legacy_url": self.legacy_url(),
            **({"ca_path": self.ca_path} if self.ca_path else {}),
        }

    def deliver_to(
        self, target: object, *, path: str | None = None, paths: Mapping[str, str] | None = None, lazy: bool = False
    ) -> None:
        """Deliver callbacks to ``target`` from now on: a URL, a WSGI/ASGI app, ``module:attribute`` or a
        ``CallbackClient`` (used as it is). ``path``: the callback path (default: the URL's own, else
        ``/voice/callback``); ``paths``: a path per kind (``{"keypress": "/voice/keys"}``). ``lazy``: a
        callable returning the target (or a ``Route``), called at the first delivery."""
        self.dispatcher.deliver_to(target, path=path, paths=paths, lazy=lazy)

    # -- scripting -------------------------------------------------------------------------------

    def on(self, number: str | None = None) -> Script:
        """Script the outcome of sends to ``number`` (E.164 or national digits; any number when None)."""
        return Script(self.backend, number)

    def decide(
        self,
        callid: str,
        outcome: str = "answer",
        *,
        ring: int | None = None,
        talk: int = DEFAULT_TALK,
        code: int = 11,
        keys: tuple[str, ...] | list[str] | str = (),
    ) -> list[Delivery]:
        """Decide the held call ``callid`` by hand, the way the callee's phone would, and schedule its callbacks.

        ``outcome``: ``answer`` (picked up, ``talk`` seconds long), ``no_answer``, ``call_error``/``fail``
        (failure ``code``), ``press`` (answered, ``keys`` pressed, then ``talk`` seconds), ``hang_up``
        (answered and hung up at once: 1 s talk, fee 1). ``ring``: seconds from dialling to the decision;
        by default the time the call was actually held (on a ``SystemClock``, in real seconds: a person's
        wait is not sped up by ``scale``). Returns the deliveries now owed (due as the clock reaches them).
        """
        if outcome not in DECISIONS:
            raise ValueError(f"outcome must be one of {', '.join(DECISIONS)}, got {outcome!r}")
        call = self.call(callid)
        held_for = self._held_ringing(call) if ring is None else ring
        return self.backend.decide(call.callid, decision(outcome, ring=held_for, talk=talk, code=code, keys=keys))

    def _held_ringing(self, call: Call) -> int:
        """Seconds a held call rang before its decision: on a manual clock the time the test moved it;
        on a scaled clock the real seconds a person took to press a button (``--scale 60`` speeds up
        scripted ringing, not a person: 160 s of waiting is not 9,600 s of ringing)."""
        held_for = _real_seconds(self.clock, self.clock.now() - (call.sent_at + DIAL_DELAY))
        return min(int(held_for), 24 * 3600)

    @property
    def held(self) -> list[Call]:
        """Calls still waiting for ``decide`` (a property; calling it is deprecated)."""
        found = [call for call in list(self.backend.calls.values()) if call.held]
        return _deprecation.RecordList(found, "Provider.held()", "Provider.held (a property)")

    # -- time and delivery -------------------------------------------------------------------------

    def run_due(self) -> list[Attempt]:
        """Deliver what is due at the clock's current time."""
        return self.dispatcher.run_due(self.clock.now())

    def advance(self, seconds: float) -> list[Attempt]:
        """Move the clock by ``seconds``, delivering each callback at the moment it falls due (on a
        ``SystemClock`` time jumps forward and flows on; deliveries its own thread started are not listed)."""
        clock = self._movable("advance")
        end = clock.now() + _arguments.seconds("seconds", seconds, allow_zero=True, maximum=MAX_CLOCK_MOVE)
        return self._run_to(clock, end)

    def run_until_idle(self, max_seconds: float = 7 * 24 * 3600) -> list[Attempt]:
        """Deliver everything owed, retries and duplicates included, moving the clock as far as needed
        (at most ``max_seconds``); returns the attempts made."""
        clock = self._movable("run_until_idle")
        end = clock.now() + _arguments.seconds("max_seconds", max_seconds, maximum=MAX_CLOCK_MOVE)
        attempts = self._run_to(clock, end, stop_when_idle=True)
        return attempts

    def _movable(self, what: str) -> ManualClock | SystemClock:
        if not isinstance(self.clock, (ManualClock, SystemClock)):
            raise RuntimeError(f"{what}() needs a ManualClock or a SystemClock; this provider runs on {self.clock!r}")
        return self.clock

    def _run_to(self, clock: ManualClock | SystemClock, end: float, *, stop_when_idle: bool = False) -> list[Attempt]:
        attempts: list[Attempt] = []
        while True:
            due = self.dispatcher.next_due()
            if due is None and not self.dispatcher.idle:
                with self.dispatcher.changed:  # a call's attempt in flight (the pump's) may still owe more
                    self.dispatcher.changed.wait(0.05)
                continue
            if due is None or due > end:
                break
            clock.move_to(due)
            attempts += self.dispatcher.run_due(clock.now())
        if not stop_when_idle:
            clock.move_to(end)
        return attempts

    def _schedule(self, deliveries: list[Delivery]) -> None:
        self.dispatcher.schedule(deliveries)

    def _pump_loop(self) -> None:
        """Real-time delivery: sleep until the next due delivery (or new work), deliver, repeat."""
        clock = self.clock
        changed = self.dispatcher.changed
        while not self._stop.is_set():
            with changed:
                due = self.dispatcher.next_due()
                now = clock.now()
                if due is None or due > now:
                    wait = 1.0 if due is None else _real_seconds(clock, due - now)
                    changed.wait(min(max(wait, 0.001), 1.0))
                    continue
            try:
                self.dispatcher.dispatch_due(clock.now())
            except Exception:  # pragma: no cover - a delivery never raises; keep the loop alive regardless
                time.sleep(0.01)

    # -- the record ------------------------------------------------------------------------------

    @property
    def sends(self) -> list[Send]:
        """Every request to a send API, accepted or refused, in order."""
        return list(self.backend.sends)

    @property
    def calls(self) -> list[Call]:
        """Every accepted send's call, in order."""
        return list(self.backend.calls.values())

    def call(self, callid: str) -> Call:
        """The call with this callid (``KeyError`` naming the known ones otherwise)."""
        try:
            return self.backend.calls[callid]
        except KeyError:
            known = ", ".join(list(self.backend.calls)[:10]) or "none"
            raise KeyError(f"no call with callid {callid!r} (known: {known})") from None

    @property
    def deliveries(self) -> list[Delivery]:
        """Every callback owed, in order (``find_deliveries(...)`` for the matching ones; calling this
        with criteria is deprecated)."""
        return _deprecation.RecordList(
            self.backend.deliveries,
            "Provider.deliveries(...)",
            "Provider.find_deliveries(...) (Provider.deliveries is a property)",
            query=self._deliveries_as_before,
        )

    def _deliveries_as_before(self, *, callid: str | None = None, **match: Any) -> list[Delivery]:
        """The deprecated ``deliveries(...)``: ``callid=None`` meant any call."""
        return self.find_deliveries(**match) if callid is None else self.find_deliveries(callid=callid, **match)

    def find_deliveries(self, *, where: Callable[[Delivery], object] | None = None, **match: Any) -> list[Delivery]:
        """Deliveries matching ``match`` and ``where`` (a callable on the ``Delivery``), in order:
        ``kind`` (short or full name), ``callid``, ``state``, ``duplicate``, ``acknowledged``, or a
        callback field (``result="1"``); a value may be a callable taking the value."""
        return _delivery_matcher(where, match).select(list(self.backend.deliveries))

    def find_sends(self, *, where: Callable[[Send], object] | None = None, **match: Any) -> list[Send]:
        """Sends matching ``match`` and ``where``, in order: ``api`` (``"3.0"``/``"legacy"``), ``action``,
        ``ok``, ``request_id``, or a send parameter (``CalledNumber="+8613900000001"``)."""
        return _send_matcher(where, match).select(self.sends)

    def wait_for_sends(
        self, count: int = 1, timeout: float = 5.0, *, where: Callable[[Send], object] | None = None, **match: Any
    ) -> list[Send]:
        """Block until ``count`` sends match (``find_sends``'s criteria), for code that sends from a
        background thread; return the matching ones. On timeout raises ``AssertionError`` listing the sends."""
        __tracebackhide__ = True
        matches = _send_matcher(where, match)
        found = self._wait(count, timeout, matches, lambda: self.sends)
        if len(found) < count:
            raise AssertionError(_timeout_message("sends", count, timeout, matches, found, self.sends))
        return found

    def wait_for_deliveries(
        self, count: int = 1, timeout: float = 5.0, *, where: Callable[[Delivery], object] | None = None, **match: Any
    ) -> list[Delivery]:
        """On a real-time clock, block until ``count`` deliveries matching ``find_deliveries``'s criteria
        are no longer pending; return those. On timeout raises ``AssertionError`` listing the deliveries."""
        __tracebackhide__ = True

        def finished() -> list[Delivery]:
            return [d for d in self.backend.deliveries if d.state != "pending"]

        matches = _delivery_matcher(where, match)
        found = self._wait(count, timeout, matches, finished)
        if len(found) < count:
            everything = list(self.backend.deliveries)
            raise AssertionError(_timeout_message("finished deliveries", count, timeout, matches, found, everything))
        return found

    def _wait(self, count: int, timeout: float, matches: Matcher[Any], records: Callable[[], list[Any]]) -> list[Any]:
        deadline = time.monotonic() + _arguments.seconds("timeout", timeout, allow_zero=True)
        while True:
            found = matches.select(records())
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            with self.dispatcher.changed:
                self.dispatcher.changed.wait(0.02)

    # -- the verdict at the end --------------------------------------------------------------------

    def expect_undelivered(self) -> None:
        """This test means some callbacks to be refused to the end: ``check()`` will not fail on them."""
        self._expect_undelivered = True

    @property
    def undelivered(self) -> list[Delivery]:
        """Deliveries that were never acknowledged, their retries spent (a property; calling it is deprecated)."""
        found = [d for d in self.backend.deliveries if d.state == "failed"]
        return _deprecation.RecordList(found, "Provider.undelivered()", "Provider.undelivered (a property)")

    def check(self) -> None:
        """``AssertionError`` listing every callback never acknowledged after its retries, and every held
        call never decided (its callbacks were never sent), unless the test expects it."""
        __tracebackhide__ = True
        problems = self.problems()
        if problems:
            raise AssertionError(problems)

    def problems(self) -> str:
        """What ``check()`` would fail with ('' when nothing): a 404 says once where callbacks were posted."""
        if self._expect_undelivered:
            return ""
        failed = self.undelivered
        held = self.held
        lines: list[str] = []
        if failed:
            retries = self.dispatcher.policy.retries
            lines.append(
                f"{len(failed)} callback{'s were' if len(failed) != 1 else ' was'} never acknowledged "
                f"after {retries} retr{'ies' if retries != 1 else 'y'}:"
            )
            lines += [d.summary() for d in failed[:10]]
        if held:
            lines.append(
                f"{len(held)} held call{'s were' if len(held) != 1 else ' was'} never decided, so "
                f"{'their' if len(held) != 1 else 'its'} callbacks were never sent (provider.decide(callid, ...)):"
            )
            lines += [call.summary() for call in held[:10]]
        missing = sorted({a.reply.request.url for d in failed for a in d.attempts if a.reply and a.reply.status == 404})
        if missing:
            lines.append(f"the handler answered HTTP 404 at {', '.join(missing[:3])}: is that its callback path?")
        if lines:
            lines.append("(call provider.expect_undelivered() if the test means it)")
        return "\n".join(lines)

    # -- HTTP --------------------------------------------------------------------------------------

    @property
    def on_send(self) -> Callable[[Send], None] | None:
        return self.backend.on_send

    @on_send.setter
    def on_send(self, hook: Callable[[Send], None] | None) -> None:
        self.backend.on_send = hook

    @property
    def hook_errors(self) -> int:
        """How many times ``on_send`` or ``on_attempt`` raised (sends and deliveries went on regardless)."""
        return self.backend.hook_errors + self.dispatcher.hook_errors

    def _handle(self, request: ApiRequest) -> ApiResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return self.control(request)
        # SDKs send no Origin, no Sec-Fetch-Site and JSON: a page on another site (a no-cors POST with the
        # default credentials) must not place a call whose callback reaches the user's handler.
        browser = browser_request(request.headers, self.control.own_hosts())
        if request.path.startswith(LEGACY_PREFIX):
            return self.legacy(request, browser=browser)
        if request.path == "/":
            return self.v3(request, browser=browser)
        return json_response(
            {"error": f"nothing at {request.path[:100]!r}: API 3.0 is POST /, the legacy API {LEGACY_PREFIX}..."},
            404,
        )


DELIVERY_KEYS = frozenset({"kind", "callid", "state", "duplicate", "acknowledged"})
"""The criteria read from a ``Delivery`` itself; any other key is a field of its callback."""
SEND_KEYS = frozenset({"api", "action", "ok", "request_id"})
"""The criteria read from a ``Send`` itself; any other key is a parameter of the request."""


def _real_seconds(clock: Clock, simulated: float) -> float:
    """How long ``simulated`` seconds take in real time on ``clock`` (a ``SystemClock`` may be scaled)."""
    return clock.real_seconds(simulated) if isinstance(clock, SystemClock) else max(simulated, 0.0)


def _timeout_message(
    what: str, count: int, timeout: float, matches: Matcher[Any], found: list[Any], records: list[Any]
) -> str:
    """What a ``wait_for_*`` that timed out says: what it waited for, then what there was."""
    wanted = matches.wanted or "anything"
    lines = [f"waited {timeout:g} s for {count} {what} matching {wanted}; {len(found)} matched; there were:"]
    lines += _text.listing(records, lambda record: str(record.summary())) or [f"  (no {what.split()[-1]} at all)"]
    return "\n".join(lines)


def _delivery_matcher(where: Callable[[Delivery], object] | None, match: Mapping[str, Any]) -> Matcher[Delivery]:
    return Matcher(match, where=where, attributes=DELIVERY_KEYS)


def _send_matcher(where: Callable[[Send], object] | None, match: Mapping[str, Any]) -> Matcher[Send]:
    return Matcher(match, where=where, attributes=SEND_KEYS, fields=lambda send: send.params)


__getattr__ = _deprecation.moved("pytest_voicecb.provider", {"Outcome": ("CallOutcome", lambda: CallOutcome)})
