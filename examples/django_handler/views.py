"""The Django view: the raw body, the shared ``handle()``, a JsonResponse; never an HTML error page."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from voice_callbacks import MAX_BODY_SIZE, CallbackStore, handle

STORE = CallbackStore()
"""Processed callbacks; in a real project, a model with a unique constraint on (kind, callid)."""


@csrf_exempt  # the provider posts server to server, without a CSRF token
def voice_callback(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"result": 1, "errmsg": "callbacks are POSTed"}, status=405)
    # request.body would raise RequestDataTooBig (an HTML 400) for a large body: check the length first.
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_SIZE:
        return JsonResponse({"result": 1, "errmsg": f"body over the {MAX_BODY_SIZE}-byte limit"}, status=413)
    # request.body is the raw bytes whatever the Content-Type (request.POST would parse forms instead).
    return JsonResponse(handle(request.body, STORE))
