"""The provider console: a page at ``/voicecb-api/console`` on the simulator's own port, for ``voicecb
provider --console``. Like moto's dashboard it talks only to the control API (``provider/control.py``):
``state`` for the calls and their deliveries, ``script`` for the outcome buttons, ``redeliver``.

``ConsoleControlApi`` is the control API plus that one page; ``voicecb provider --console`` installs it
as the provider's ``control``. The page is refused when the request's ``Host`` is not the simulator's own
address (DNS rebinding); its rows are built with ``textContent`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    """The control API, plus ``GET /voicecb-api/console``: the page."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)

    def url(self) -> str:
        return self.provider.url.rstrip("/") + PAGE

    def __call__(self, request: ApiRequest) -> ApiResponse:
        if request.path.rstrip("/") != PAGE:
            return super().__call__(request)
        own = self.provider.endpoint
        port = own.rpartition(":")[2]
        allowed = {own, f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        host = request.header("Host") or ""
        if host not in allowed:
            return json_response({"error": f"Host {host!r} is not this simulator's address"}, 403)
        if request.method != "GET":
            return json_response({"error": "the console page is GET only"}, 405)
        page = asset("provider.html").replace("/*CSS*/", asset("console.css")).replace("/*JS*/", asset("provider.js"))
        return ApiResponse(200, page.encode("utf-8"), list(_HEADERS))
