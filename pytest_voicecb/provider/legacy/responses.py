"""The legacy send API: ``POST /v5/tlsvoicesvr/{sendvoiceprompt,sendcvoice,sendtvoice}?sdkappid=&random=``.

The body carries ``tel{nationcode,mobile}``, ``sig = sha256("appkey=K&random=R&time=T&mobile=M")``,
``time``, ``playtimes``, ``ext`` and the action's own fields (``prompttype``/``promptfile``, ``msg``,
``tpl_id``/``params``), as ``qcloudsms_py`` sends them. Success is ``{"result": 0, "errmsg": "OK",
"ext", "callid"}`` (32 hex characters); a refusal is HTTP 200 with the documented ``result`` number.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_voicecb.contract import CODE, PROMPT
from pytest_voicecb.provider import exceptions as err
from pytest_voicecb.provider.wire import ApiRequest, ApiResponse, json_response

if TYPE_CHECKING:
    from pytest_voicecb.provider.models import Credentials, SimulatorBackend

__all__ = ["ACTIONS", "PREFIX", "LegacyApi", "legacy_sig"]

PREFIX = "/v5/tlsvoicesvr/"
ACTIONS = ("sendvoiceprompt", "sendcvoice", "sendtvoice")


def legacy_sig(appkey: str, random: str, timestamp: int | str, mobile: str) -> str:
    """The legacy ``sig``: sha256 of ``appkey=K&random=R&time=T&mobile=M``, hex."""
    return hashlib.sha256(f"appkey={appkey}&random={random}&time={timestamp}&mobile={mobile}".encode()).hexdigest()


class LegacyApi:
    """Answers legacy send requests for one ``sdkappid``/``appkey``."""

    def __init__(
        self, backend: SimulatorBackend, credentials: Credentials, *, api_time: Callable[[], float] = time.time
    ) -> None:
        self.backend = backend
        self.credentials = credentials
        self.api_time = api_time

    def __call__(self, request: ApiRequest, *, browser: str = "") -> ApiResponse:
        """Answer ``request``; ``browser``: why it came from a page on another site (refused, recorded)."""
        action = request.path[len(PREFIX) :] if request.path.startswith(PREFIX) else request.path
        body: dict[str, Any] = {}
        try:
            if browser:
                raise err.UnsupportedProtocol(f"a browser's request from another site is refused: {browser}")
            body = self._verified_body(request, action)
            return self._send(action, body)
        except err.SendApiError as exc:
            self.backend.refuse("legacy", action, body, exc)
            return json_response({"result": exc.result, "errmsg": exc.legacy_text})

    def _verified_body(self, request: ApiRequest, action: str) -> dict[str, Any]:
        if action not in ACTIONS:
            raise err.InvalidAction(f"no such REST API: {action[:60]!r} (served: {', '.join(ACTIONS)})")
        if request.method != "POST":
            raise err.UnsupportedProtocol(f"{request.method} is not supported: POST a JSON body")
        if request.too_large:
            raise err.RequestSizeLimitExceeded("request body too large")
        if (request.header("Content-Type") or "").lower().startswith("application/x-www-form-urlencoded"):
            raise err.UnsupportedProtocol(
                "a form body is not served: POST JSON (application/json), as qcloudsms_py does"
            )
        query = urllib.parse.parse_qs(request.query)
        sdkappid = (query.get("sdkappid") or [""])[0]
        random = (query.get("random") or [""])[0]
        if not sdkappid or not random:
            raise err.MissingParameter("the URL needs ?sdkappid=...&random=...")
        if sdkappid != self.credentials.sdkappid:
            raise err.SdkAppidNotExist(f"sdkappid {sdkappid[:40]!r} does not exist")
        body = err.json_object(
            request.body, not_json="request body is not JSON", not_object="request body is not a JSON object"
        )
        tel = body.get("tel")
        if (
            not isinstance(tel, dict)
            or not isinstance(tel.get("mobile"), str)
            or not isinstance(tel.get("nationcode"), str)
        ):
            raise err.MissingParameter("tel must be an object with string nationcode and mobile")
        sig, stamp = body.get("sig"), body.get("time")
        if not isinstance(sig, str) or not sig:
            raise err.InvalidAuthorization("sig is missing or empty")
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            raise err.InvalidParameter("time must be a number (Unix seconds)")
        if abs(int(self.api_time()) - stamp) > self.credentials.window:  # whole numbers: any int compares
            shown = str(stamp) if abs(stamp) < 10**15 else f"of {len(str(abs(stamp)))} digits"
            raise err.SignatureExpire(f"time {shown} is out of the allowed window of {self.credentials.window:g} s")
        expected = legacy_sig(self.credentials.appkey, random, stamp, tel["mobile"])
        if not hmac.compare_digest(expected, sig.lower()):
            raise err.SignatureFailure()
        return body

    def _send(self, action: str, body: dict[str, Any]) -> ApiResponse:
        tel = body["tel"]
        nationcode, mobile = tel["nationcode"], tel["mobile"]
        if not (nationcode.isascii() and nationcode.isdigit() and mobile.isascii() and mobile.isdigit()):
            raise err.CalledNumberInvalid("nationcode and mobile must be digits")
        if nationcode == "86" and not (len(mobile) == 11 and mobile[0] == "1"):
            raise err.CalledNumberInvalid(f"{mobile[:20]} is not a mainland China mobile number")
        playtimes = 2 if body.get("playtimes") is None else body["playtimes"]
        if not isinstance(playtimes, int) or isinstance(playtimes, bool) or not 1 <= playtimes <= 3:
            raise err.InvalidParameterValue("playtimes must be 1 to 3")
        if action == "sendvoiceprompt":
            if not isinstance(body.get("promptfile"), str) or not body["promptfile"]:
                raise err.MissingParameter("promptfile is missing")
            if body.get("prompttype") not in (None, 2):
                raise err.InvalidParameterValue("prompttype must be 2")
        elif action == "sendcvoice":
            msg = body.get("msg")
            if not isinstance(msg, str) or not (msg.isascii() and msg.isdigit() and len(msg) <= 12):
                raise err.InvalidParameterValue("msg must be a verification code of up to 12 digits")
        else:
            if not isinstance(body.get("tpl_id"), int) or isinstance(body.get("tpl_id"), bool):
                raise err.TemplateIncorrectOrUnapproved("tpl_id must be the number of an approved template")
            params = body.get("params")
            if params is not None and not (isinstance(params, list) and all(isinstance(p, str) for p in params)):
                raise err.InvalidParameter("params must be a list of strings")
        outcome = self.backend.outcome_for(nationcode, mobile)
        if outcome.drop:
            self.backend.refuse("legacy", action, body, err.InternalError("connection dropped (scripted)"))
            return ApiResponse(drop=True)
        ext = body.get("ext", "")
        ext = ext if isinstance(ext, str) else ""
        send = self.backend.place(
            "legacy",
            action,
            nationcode,
            mobile,
            body,
            kind=CODE if action == "sendcvoice" else PROMPT,
            outcome=outcome,
            session_context=ext,
        )
        if send.error is not None:
            response = json_response({"result": send.error.result, "errmsg": send.error.legacy_text, "ext": ext})
        else:
            assert send.call is not None
            response = json_response({"result": 0, "errmsg": "OK", "ext": ext, "callid": send.call.callid})
        response.delay = outcome.delay
        return response
