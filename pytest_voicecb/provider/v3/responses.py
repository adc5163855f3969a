"""API 3.0 requests in, API 3.0 responses out: verify as the service does, then ask the backend.

Checks run in the service's order: the body size, the action and version headers, the Authorization
header, the timestamp window, the SecretId, the signature, then the parameters. Every refusal is an
HTTP 200 with ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``, which the official SDK
raises as ``TencentCloudSDKException(code, message, request_id)``; nothing a client sends gets a 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_voicecb._text import media_type
from pytest_voicecb.contract import CODE, PROMPT
from pytest_voicecb.provider import exceptions as err
from pytest_voicecb.provider.models import split_e164
from pytest_voicecb.provider.v3.signing import parse_authorization, scope_mismatch, scope_services, signature_matches
from pytest_voicecb.provider.wire import ApiRequest, ApiResponse, json_response

if TYPE_CHECKING:
    from pytest_voicecb.provider.models import CallOutcome, Credentials, SimulatorBackend

__all__ = ["ACTIONS", "SERVICE", "VERSION", "V3Api"]

SERVICE = "vms"
VERSION = "2020-09-02"

# name -> (JSON type name for messages, python types, required)
_Field = tuple[str, tuple[type, ...], bool]
_COMMON: dict[str, _Field] = {
    "CalledNumber": ("String", (str,), True),
    "VoiceSdkAppid": ("String", (str,), True),
    "PlayTimes": ("Integer", (int,), False),
    "SessionContext": ("String", (str,), False),
}
ACTIONS: dict[str, dict[str, _Field]] = {
    "SendTtsVoice": {
        "TemplateId": ("String", (str,), True),
        "TemplateParamSet": ("Array of String", (list,), False),
        **_COMMON,
    },
    "SendCodeVoice": {"CodeMessage": ("String", (str,), True), **_COMMON},
}
"""The actions served, with their request fields."""


class V3Api:
    """Answers API 3.0 requests for one set of credentials. ``api_time`` is the service's clock for the
    timestamp window (real time: the SDK signs with ``time.time()``, whatever the simulated clock says)."""

    def __init__(
        self, backend: SimulatorBackend, credentials: Credentials, *, api_time: Callable[[], float] = time.time
    ) -> None:
        self.backend = backend
        self.credentials = credentials
        self.api_time = api_time

    def __call__(self, request: ApiRequest, *, browser: str = "") -> ApiResponse:
        """Answer ``request``; ``browser``: why it came from a page on another site (refused, recorded)."""
        action = request.header("X-TC-Action") or ""
        params: dict[str, Any] = {}
        try:
            if browser:
                raise err.UnsupportedProtocol(f"A browser's request from another site is refused: {browser}.")
            params = self._verified_params(request, action)
            return self._send(action, params)
        except err.SendApiError as exc:
            send = self.backend.refuse("3.0", action or "(none)", params, exc)
            return _error(exc, send.request_id)

    def _verified_params(self, request: ApiRequest, action: str) -> dict[str, Any]:
        if request.method != "POST":
            raise err.UnsupportedProtocol(f"{request.method} is not served here: POST a JSON body, as the SDK does")
        if request.too_large:
            raise err.RequestSizeLimitExceeded()
        if not action and (request.header("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            raise err.UnsupportedProtocol(
                "Only TC3-HMAC-SHA256 requests are verified here (the SDK's default signMethod); "
                "HmacSHA1/HmacSHA256 form requests are not served by the simulator."
            )
        if not action:
            raise err.MissingParameter("The request is missing a required parameter `Action` (header X-TC-Action).")
        version = request.header("X-TC-Version")
        if not version:
            raise err.MissingParameter("The request is missing a required parameter `Version` (header X-TC-Version).")
        if version != VERSION:
            raise err.NoSuchVersion(f"The API version `{_safe(version)}` of service `{SERVICE}` does not exist.")
        if action not in ACTIONS:
            raise err.InvalidAction(f"The action `{_safe(action)}` of service `{SERVICE}` is not found.")
        self._authenticate(request)
        content_type = media_type(request.header("Content-Type"))
        if content_type != "application/json":
            raise err.UnsupportedProtocol(f"Content-Type `{_safe(content_type)}` is not served: send application/json")
        params = err.json_object(request.body, not_object="The request body must be a JSON object of parameters.")
        return _check_fields(ACTIONS[action], params)

    def _authenticate(self, request: ApiRequest) -> None:
        raw = request.header("Authorization")
        if not raw:
            raise err.InvalidAuthorization("The Authorization header is missing.")
        auth = parse_authorization(raw)
        if auth is None:
            raise err.InvalidAuthorization("The Authorization header is not a TC3-HMAC-SHA256 authorization.")
        stamp = request.header("X-TC-Timestamp") or ""
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise err.MissingParameter("The request is missing a valid `Timestamp` (header X-TC-Timestamp).")
        timestamp = int(stamp)
        now = self.api_time()
        if abs(now - timestamp) > self.credentials.window:
            raise err.SignatureExpire(
                f"Signature expired: X-TC-Timestamp {timestamp} differs from the server time {int(now)} "
                f"by more than {self.credentials.window:g} s."
            )
        if auth.secret_id != self.credentials.secret_id:
            raise err.SecretIdNotFound()
        accepted = scope_services(request.header("Host") or "", SERVICE)
        mismatch = scope_mismatch(auth, timestamp=timestamp, accepted=accepted)
        if mismatch is not None:
            raise err.SignatureFailure(mismatch)
        if "content-type" not in auth.signed_headers or "host" not in auth.signed_headers:
            raise err.InvalidAuthorization("SignedHeaders must include content-type and host.")
        if not signature_matches(
            self.credentials.secret_key,
            auth,
            method=request.method,
            uri=request.path,
            query=request.query,
            headers=request.headers,
            payload=request.body,
            timestamp=timestamp,
            unsigned_payload=request.header("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD",
        ):
            raise err.SignatureFailure()

    def _send(self, action: str, params: dict[str, Any]) -> ApiResponse:
        creds = self.credentials
        if params["VoiceSdkAppid"] != creds.voice_sdk_appid:
            raise err.SdkAppidNotExist(f"VoiceSdkAppid `{_safe(params['VoiceSdkAppid'])}` does not exist.")
        nationcode, mobile = split_e164(params["CalledNumber"])
        play_times = params.get("PlayTimes", 2)
        if not 1 <= play_times <= 3:
            raise err.InvalidParameterValue(f"PlayTimes must be 1 to 3, got {_safe(play_times, 20)}.")
        if action == "SendTtsVoice":
            template = params["TemplateId"]
            if not (template.isascii() and template.isdigit()):
                raise err.TemplateIncorrectOrUnapproved(f"TemplateId `{_safe(template)}` is not an approved template.")
            if not all(isinstance(value, str) for value in params.get("TemplateParamSet", [])):
                raise err.InvalidParameter("The value type of parameter `TemplateParamSet` must be Array of String.")
        else:
            code = params["CodeMessage"]
            if not (code.isascii() and code.isdigit() and 1 <= len(code) <= 12):
                raise err.InvalidParameterValue("CodeMessage must be 1 to 12 digits.")
        outcome: CallOutcome = self.backend.outcome_for(nationcode, mobile)
        if outcome.drop:
            self.backend.refuse("3.0", action, params, err.InternalError("connection dropped (scripted)"))
            return ApiResponse(drop=True)
        context = params.get("SessionContext", "")
        send = self.backend.place(
            "3.0",
            action,
            nationcode,
            mobile,
            params,
            kind=CODE if action == "SendCodeVoice" else PROMPT,
            outcome=outcome,
            session_context=context,
        )
        if send.error is not None:
            response = _error(send.error, send.request_id)
        else:
            assert send.call is not None
            status = {"CallId": send.call.callid, "SessionContext": context}
            response = json_response({"Response": {"SendStatus": status, "RequestId": send.request_id}})
        response.delay = outcome.delay
        return response


def _check_fields(fields: dict[str, _Field], params: dict[str, Any]) -> dict[str, Any]:
    """The parameters, type-checked; a ``null`` is an absent parameter, as the service reads it (the SDK
    itself leaves unset fields out)."""
    for name in params:
        if name not in fields:
            raise err.UnknownParameter(f"The parameter `{_safe(name)}` is not recognized.")
    for name, (type_name, types, required) in fields.items():
        if name not in params or params[name] is None:
            if required:
                raise err.MissingParameter(f"The request is missing a required parameter `{name}`.")
            continue
        value = params[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise err.InvalidParameter(f"The value type of parameter `{name}` is not valid: expected {type_name}.")
    return {name: value for name, value in params.items() if value is not None}


def _error(exc: err.SendApiError, request_id: str) -> ApiResponse:
    return json_response({"Response": {"Error": {"Code": exc.code, "Message": exc.text}, "RequestId": request_id}})


def _safe(value: object, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:limit] + ("…" if len(text) > limit else "")
