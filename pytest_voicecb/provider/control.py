"""The simulator's own JSON API under ``/voicecb-api/`` (moto's ``/moto-api/``), for tests in any language.

``GET  /voicecb-api/state``             sends, calls and deliveries (``?callid=`` filters deliveries)
``POST /voicecb-api/reset``             forget everything, restart the clock and the id streams
``POST /voicecb-api/advance``           ``{"seconds": 60}``: move the clock, deliver what falls due
``POST /voicecb-api/run-until-idle``    deliver everything owed, moving the clock as far as needed
``POST /voicecb-api/script``            ``{"number": "+86...", "outcome": "no_answer", "times": 1, ...}``
``POST /voicecb-api/redeliver``         ``{"seq": 3}``: deliver delivery #3's callback again, now (a duplicate)
``POST /voicecb-api/decide``            ``{"callid": "...", "outcome": "answer", "talk": 30}``: decide a held call

``outcome`` is one of ``answer`` (``ring``, ``talk``), ``no_answer`` (``ring``), ``call_error``/``fail``
(``code``), ``press`` (``keys``), ``refuse`` (``code``: an API 3.0 code or a legacy result), ``slow``
(``seconds``), ``drop``, ``hold`` (no callback until ``decide``). ``decide`` takes ``answer`` (``ring``,
``talk``), ``no_answer``, ``call_error``/``fail`` (``code``), ``press`` (``keys``, ``talk``), ``hang_up``;
``ring`` defaults to the time the call was held. Bad requests get HTTP 400 with ``{"error": ...}``; the
server keeps serving; a verb the clock cannot do gets 409. A request whose ``Host`` does not name this
simulator (DNS rebinding) and a POST a browser sends from another site (its ``Origin`` is not this
address) are refused with 403: no web page can read or drive the simulator behind its user's back.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from pytest_voicecb._sites import foreign_origin, is_loopback, own_host, own_hosts
from pytest_voicecb.contract import kind_named
from pytest_voicecb.provider.wire import ApiRequest, ApiResponse, json_response

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_voicecb.provider import Provider
    from pytest_voicecb.provider.models import Attempt, Call, Delivery, Send

__all__ = ["PREFIX", "ControlApi", "attempt_data", "call_data", "delivery_data", "send_data"]

PREFIX = "/voicecb-api/"


def send_data(send: Send) -> dict[str, Any]:
    return {
        "api": send.api,
        "action": send.action,
        "at": send.at,
        "request_id": send.request_id,
        "ok": send.ok,
        "error": None if send.error is None else {"code": send.error.code, "message": send.error.text},
        "callid": None if send.call is None else send.call.callid,
    }


def call_data(call: Call) -> dict[str, Any]:
    return {
        "callid": call.callid,
        "api": call.api,
        "action": call.action,
        "number": call.number,
        "sent_at": call.sent_at,
        "outcome": call.outcome.describe(),
        "held": call.held,
        "decided_at": call.decided_at,
        "session_context": call.session_context,
        "deliveries": [delivery.seq for delivery in call.deliveries],
    }


def attempt_data(attempt: Attempt) -> dict[str, Any]:
    reply = attempt.reply
    return {
        "number": attempt.number,
        "at": attempt.at,
        "acknowledged": attempt.acknowledged,
        "status": None if reply is None else reply.status,
        "reply": None if reply is None else reply.body.decode("utf-8", "replace"),
        "error": attempt.error,
        "problems": [] if attempt.verdict is None else list(attempt.verdict.problems),
        "elapsed": round(attempt.elapsed, 6),
    }


def delivery_data(delivery: Delivery) -> dict[str, Any]:
    return {
        "seq": delivery.seq,
        "callid": delivery.callid,
        "kind": delivery.kind,
        "name": kind_named(delivery.kind, short=True),
        "payload": delivery.payload,
        "due": delivery.due,
        "duplicate": delivery.duplicate,
        "state": delivery.state,
        "attempts": [attempt_data(attempt) for attempt in delivery.attempts],
    }


class ControlApi:
    """Serves ``/voicecb-api/`` for one ``Provider``."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def __call__(self, request: ApiRequest) -> ApiResponse:
        name = request.path[len(PREFIX) :].strip("/")
        refused = self.foreign(request)
        if refused:
            return json_response({"error": refused}, 403)
        try:
            return self._route(name, request)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"error": f"{type(exc).__name__}: {exc}"}, 400)
        except RuntimeError as exc:  # a verb this simulator's clock cannot do
            return json_response({"error": str(exc)}, 409)

    def own_hosts(self) -> set[str]:
        """``Host`` values naming this simulator: its endpoint and the loopback names with its port."""
        host, _, port = self.provider.endpoint.rpartition(":")
        return own_hosts(host.strip("[]"), port)

    def foreign(self, request: ApiRequest) -> str:
        """Why another site's page may not use this request ('' when it may): a ``Host`` that is not this
        simulator (DNS rebinding: a page reading the state), or a POST from another site (CSRF)."""
        host = request.header("Host")
        if not own_host(host, self.own_hosts(), remote=not is_loopback(self.provider.server.host)):
            return f"Host {host!r} is not this simulator's address"
        origin = request.header("Origin")
        if request.method != "GET" and foreign_origin(origin, self.own_hosts()):
            return f"Origin {origin!r} is another site"
        return ""

    def _route(self, name: str, request: ApiRequest) -> ApiResponse:
        p = self.provider
        if name == "state" and request.method == "GET":
            callids = urllib.parse.parse_qs(request.query).get("callid")
            callid = callids[0] if callids else None
            return json_response(
                {
                    "now": p.clock.now(),
                    "sends": [send_data(s) for s in p.sends],
                    "calls": [call_data(c) for c in p.calls],
                    "deliveries": [
                        delivery_data(d) for d in (p.deliveries if callid is None else p.find_deliveries(callid=callid))
                    ],
                }
            )
        if request.method != "POST":
            return json_response({"error": f"no {request.method} {PREFIX}{name}: see the module docstring"}, 404)
        args = _json_object(request.body)
        if name == "reset":
            p.reset()
            return json_response({"ok": True})
        if name == "advance":
            attempts = p.advance(args["seconds"])
            return json_response({"now": p.clock.now(), "attempts": len(attempts)})
        if name == "run-until-idle":
            attempts = p.run_until_idle()
            return json_response({"now": p.clock.now(), "attempts": len(attempts)})
        if name == "script":
            self._script(args)
            return json_response({"ok": True})
        if name == "redeliver":
            return json_response(self._redeliver(args))
        if name == "decide":
            callid = args.pop("callid", None)
            if not isinstance(callid, str):
                raise ValueError(f"callid must be the held call's callid (a string), got {callid!r}")
            if isinstance(args.get("keys"), list):
                args["keys"] = tuple(args["keys"])
            deliveries = p.decide(callid, args.pop("outcome", "answer"), **args)
            return json_response({"callid": callid, "deliveries": [d.seq for d in deliveries]})
        return json_response({"error": f"no POST {PREFIX}{name}: see the module docstring"}, 404)

    def _script(self, args: dict[str, Any]) -> None:
        script = self.provider.on(args.pop("number", None))
        outcome = args.pop("outcome", None)
        verbs: dict[str, Callable[..., object]] = {
            "answer": script.answer,
            "no_answer": script.no_answer,
            "call_error": script.call_error,
            "fail": script.fail,
            "press": script.press,
            "refuse": script.refuse,
            "slow": script.slow,
            "drop": script.drop,
            "hold": script.hold,
        }
        if outcome not in verbs:
            raise ValueError(f"outcome must be one of {', '.join(verbs)}, got {outcome!r}")
        if outcome == "press":
            keys = args.pop("keys", ["1"])
            verbs[outcome](*(keys if isinstance(keys, list) else [keys]), **args)
        else:
            verbs[outcome](**args)

    def _redeliver(self, args: dict[str, Any]) -> dict[str, Any]:
        """Queue a copy of delivery ``seq`` (same payload, marked duplicate), due now."""
        seq = args.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError(f"seq must be a delivery number, got {seq!r}")
        p = self.provider
        found = [delivery for delivery in p.deliveries if delivery.seq == seq]
        if not found:
            raise ValueError(f"no delivery #{seq}")
        copy = p.backend.duplicate(found[0], p.clock.now())
        p.dispatcher.schedule([copy])
        return {"seq": copy.seq, "due": copy.due}


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data
