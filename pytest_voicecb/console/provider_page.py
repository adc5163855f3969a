"""The provider console: a page at ``/voicecb-api/console`` on the simulator's own port, for ``voicecb
provider --console``. Like moto's dashboard it talks only to the control API (``provider/control.py``):
``state`` for the calls and their deliveries, ``script`` for the outcome buttons, ``redeliver``.

``ConsoleControlApi`` is the control API plus that one page; ``voicecb provider --console`` installs it
as the provider's ``control``. Requests whose ``Host`` is not the simulator's own address are refused (DNS
rebinding), and so are a browser's requests without the token printed in the page's URL or from another
site (CSRF); the page's rows are built with ``textContent`` only.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

from pytest_voicecb._sites import foreign_origin
from pytest_voicecb.console import asset
from pytest_voicecb.provider.control import PREFIX, ControlApi
from pytest_voicecb.provider.wire import ApiRequest, ApiResponse, json_response

if TYPE_CHECKING:
    from pytest_voicecb.provider import Provider

__all__ = ["PAGE", "ConsoleControlApi"]

PAGE = PREFIX + "console"
"""The page's path."""

_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; "
        "img-src data:; frame-ancestors 'none'",
    ),
]


class ConsoleControlApi(ControlApi):
    """The control API, plus ``GET /voicecb-api/console``: the page; ``token`` (random by default) is its key.

    With the page served, every control request must name this simulator in its ``Host`` (no DNS
    rebinding), and a browser's request (one with an ``Origin``) must come from this address and carry the
    token printed in the page's URL (``X-Voicecb-Token``). Tests and scripts (no ``Origin``) need no token.
    """

    def __init__(self, provider: Provider, *, token: str | None = None) -> None:
        super().__init__(provider)
        self.token = token or secrets.token_urlsafe(18)

    def url(self) -> str:
        """The page's URL, with the token (print it; it is the key to the page's buttons)."""
        return f"{self.provider.url.rstrip('/')}{PAGE}?token={self.token}"

    def __call__(self, request: ApiRequest) -> ApiResponse:
        refused = self.foreign(request)
        if refused:
            return json_response({"error": refused}, 403)
        if request.path.rstrip("/") != PAGE:
            refused = self._refused(request)
            return json_response({"error": refused}, 403) if refused else super().__call__(request)
        if request.method != "GET":
            return json_response({"error": "the console page is GET only"}, 405)
        page = asset("provider.html").replace("/*CSS*/", asset("console.css")).replace("/*JS*/", asset("provider.js"))
        return ApiResponse(200, page.encode("utf-8"), list(_HEADERS))

    def _refused(self, request: ApiRequest) -> str:
        """Why a browser's control request is refused ('' when it is not, or comes from no browser)."""
        origin = request.header("Origin")
        if origin is None:
            return ""
        if foreign_origin(origin, self.own_hosts()):
            return f"Origin {origin!r} is another site"
        if not hmac.compare_digest(request.header("X-Voicecb-Token") or "", self.token):
            return "missing or wrong token: open the console URL voicecb provider printed"
        return ""
