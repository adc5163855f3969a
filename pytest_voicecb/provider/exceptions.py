"""The send APIs' errors, one class per error, with its code and message at class level (moto's habit).

Each error knows how both APIs spell it: ``code`` and ``message`` for API 3.0
(``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``), ``result`` and ``errmsg`` for the legacy
API (``{"result": 1001, "errmsg": "..."}``). Models raise them; each API's responses render them. The
codes are the provider's published ones (the common API 3.0 codes, ``vms``' own codes from its SDK, and
the legacy API's result table); the messages are ours, in the provider's style.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

__all__ = [
    "SEND_ERRORS",
    "CalledNumberInvalid",
    "DeliveryFrequencyLimit",
    "InsufficientBalance",
    "InternalError",
    "InvalidAction",
    "InvalidAuthorization",
    "InvalidParameter",
    "InvalidParameterValue",
    "JsonParseFail",
    "MissingParameter",
    "NoSuchVersion",
    "RequestSizeLimitExceeded",
    "SdkAppidNotExist",
    "SecretIdNotFound",
    "SendApiError",
    "ServiceSuspended",
    "SignatureExpire",
    "SignatureFailure",
    "TemplateIncorrectOrUnapproved",
    "UnknownParameter",
    "UnsupportedProtocol",
    "error_for",
    "json_object",
]


class SendApiError(Exception):
    """A send refused by the provider. ``detail`` replaces the class's message when given."""

    code: ClassVar[str] = "InternalError"
    message: ClassVar[str] = "An internal error has occurred. Retry your request."
    result: ClassVar[int] = 1007
    errmsg: ClassVar[str] = "other error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(f"{self.code}: {self.text}")

    @property
    def text(self) -> str:
        """The message as sent: the detail when there is one."""
        return self.detail or self.message

    @property
    def legacy_text(self) -> str:
        return self.detail or self.errmsg


class InternalError(SendApiError):
    pass


class SignatureFailure(SendApiError):
    code = "AuthFailure.SignatureFailure"
    message = "The provided credentials could not be validated. Please check your signature is correct."
    result = 1001
    errmsg = "sig verification failed"


class SignatureExpire(SendApiError):
    code = "AuthFailure.SignatureExpire"
    message = "Signature expired. Timestamp and server time cannot differ by more than five minutes."
    result = 1021
    errmsg = "request time out of the allowed window"


class SecretIdNotFound(SendApiError):
    code = "AuthFailure.SecretIdNotFound"
    message = "The SecretId is not found, please ensure that your SecretId is correct."
    result = 1019
    errmsg = "sdkappid does not exist"


class InvalidAuthorization(SendApiError):
    code = "AuthFailure.InvalidAuthorization"
    message = "The Authorization header is malformed."
    result = 1003
    errmsg = "sig is missing or empty"


class InvalidAction(SendApiError):
    code = "InvalidAction"
    message = "The action requested is not found."
    result = 1011
    errmsg = "the REST API does not exist"


class NoSuchVersion(SendApiError):
    code = "NoSuchVersion"
    message = "The API version requested does not exist."
    result = 1011
    errmsg = "the REST API does not exist"


class UnsupportedProtocol(SendApiError):
    code = "UnsupportedProtocol"
    message = "The request method or protocol is not supported."
    result = 1030
    errmsg = "request not supported"


class RequestSizeLimitExceeded(SendApiError):
    code = "RequestSizeLimitExceeded"
    message = "The request body exceeds the size limit."
    result = 1004
    errmsg = "request body could not be parsed"


class JsonParseFail(SendApiError):
    code = "FailedOperation.JsonParseFail"
    message = "The request body is not valid JSON."
    result = 1004
    errmsg = "request body could not be parsed"


class MissingParameter(SendApiError):
    code = "MissingParameter"
    message = "The request is missing a required parameter."
    result = 1004
    errmsg = "request body could not be parsed"


class InvalidParameter(SendApiError):
    code = "InvalidParameter"
    message = "A parameter has the wrong type."
    result = 1004
    errmsg = "request body could not be parsed"


class UnknownParameter(SendApiError):
    code = "UnknownParameter"
    message = "An unrecognized parameter was given."
    result = 1004
    errmsg = "request body could not be parsed"


class InvalidParameterValue(SendApiError):
    code = "InvalidParameterValue"
    message = "A parameter's value is out of range."
    result = 1004
    errmsg = "request body could not be parsed"


class CalledNumberInvalid(SendApiError):
    code = "InvalidParameterValue.CalledNumberVerifyFail"
    message = "The called number is not a valid E.164 number."
    result = 1016
    errmsg = "mobile number format error"


class SdkAppidNotExist(SendApiError):
    code = "InvalidParameterValue.SdkAppidNotExist"
    message = "The SdkAppid does not exist."
    result = 1019
    errmsg = "sdkappid does not exist"


class TemplateIncorrectOrUnapproved(SendApiError):
    code = "FailedOperation.TemplateIncorrectOrUnapproved"
    message = "The template is incorrect or has not been approved."
    result = 1014
    errmsg = "template not approved or content does not match it"


class DeliveryFrequencyLimit(SendApiError):
    code = "LimitExceeded.DeliveryFrequencyLimit"
    message = "The delivery frequency limit for this number was reached."
    result = 1023
    errmsg = "too many sends to this number in 30 seconds"


class InsufficientBalance(SendApiError):
    code = "FailedOperation.InsufficientBalanceInVoicePackage"
    message = "The voice package balance is insufficient."
    result = 1031
    errmsg = "package balance insufficient"


class ServiceSuspended(SendApiError):
    code = "UnauthorizedOperation.ServiceSuspendDueToArrears"
    message = "The service is suspended because the account is in arrears."
    result = 1033
    errmsg = "service stopped: account in arrears"


SEND_ERRORS: dict[str, type[SendApiError]] = {
    cls.code: cls
    for cls in (
        InternalError,
        SignatureFailure,
        SignatureExpire,
        SecretIdNotFound,
        InvalidAuthorization,
        InvalidAction,
        NoSuchVersion,
        UnsupportedProtocol,
        RequestSizeLimitExceeded,
        JsonParseFail,
        MissingParameter,
        InvalidParameter,
        UnknownParameter,
        InvalidParameterValue,
        CalledNumberInvalid,
        SdkAppidNotExist,
        TemplateIncorrectOrUnapproved,
        DeliveryFrequencyLimit,
        InsufficientBalance,
        ServiceSuspended,
    )
}
"""Every error by its API 3.0 code."""


def json_object(body: bytes, *, not_json: str | None = None, not_object: str | None = None) -> dict[str, Any]:
    """A send API's JSON body, or ``JsonParseFail``: not JSON, not an object, or text no UTF-8 can carry
    (a lone surrogate such as ``"\\ud800"``, which the service's parser refuses and no answer could echo)."""
    try:
        data = json.loads(body)
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        raise JsonParseFail(not_json) from None
    if not isinstance(data, dict):
        raise JsonParseFail(not_object)
    return data


def error_for(code: str | int | type[SendApiError] | SendApiError) -> SendApiError:
    """An error from its class, its API 3.0 code, or its legacy result number (for scripting refusals)."""
    if isinstance(code, SendApiError):
        return code
    if isinstance(code, type) and issubclass(code, SendApiError):
        return code()
    if isinstance(code, str) and code in SEND_ERRORS:
        return SEND_ERRORS[code]()
    if isinstance(code, int) and not isinstance(code, bool):
        for cls in SEND_ERRORS.values():
            if cls.result == code:
                return cls()
    if isinstance(code, str) and code:
        # A code we have no class for: render it as given, so a test can script any documented code.
        scripted: type[SendApiError] = type(
            "ScriptedError", (SendApiError,), {"code": code, "message": f"{code} (scripted)"}
        )
        return scripted()
    known = ", ".join(sorted(SEND_ERRORS))
    raise ValueError(f"unknown send error {code!r}: give an error class, an API 3.0 code ({known}) or a legacy result")
