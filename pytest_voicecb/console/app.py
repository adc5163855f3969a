"""The live console's WSGI app, mounted by ``voicecb serve`` at ``/_voicecb/`` on its own port.

``GET /`` is the page (inline CSS and JS: no network). The page talks to a small JSON API:

- ``GET api/callbacks?after=N&before=N&limit=N&kind=&callid=&verdict=&oldest=1``: summaries, newest first
  (the newest ``limit`` in the range, or with ``oldest=1`` the oldest: paging towards now);
- ``GET api/callbacks/SEQ``: one callback's body, headers, reply and curl command;
- ``POST api/script`` ``{"reply": "ok"|"error"|"delay"|"drop", "times": n, "delay": s}``: the next replies;
- ``POST api/clear``: forget what the console shows.

Every API request must carry the token printed in the console's URL (``X-Voicecb-Token``), and a request
whose ``Host`` is not the server's own loopback address (DNS rebinding) or whose ``Origin`` is another
site's (CSRF) is refused with 403. The page builds its rows with ``textContent`` only.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from pytest_voicecb._sites import foreign_origin, own_hosts
from pytest_voicecb.console import asset

if TYPE_CHECKING:
    from pytest_voicecb.console.feed import Feed
    from pytest_voicecb.server import CallbackServer

__all__ = ["PREFIX", "ConsoleApp"]

PREFIX = "/_voicecb/"
"""Where ``voicecb serve`` mounts the console."""
_LIMIT = 500
_REPLIES = ("ok", "error", "delay", "drop")


class ConsoleApp:
    """The console showing ``feed`` and scripting ``server``; ``token`` (random by default) guards the API.

    ``server`` may be given later (``app.server = server``): the server is built with the app mounted.
    ``hosts`` are ``Host`` values accepted besides the server's own loopback names and bound address.
    """

    def __init__(
        self, feed: Feed, server: CallbackServer | None = None, *, token: str | None = None, hosts: Iterable[str] = ()
    ) -> None:
        self._server = server
        self.feed = feed
        self.token = token or secrets.token_urlsafe(18)
        self.hosts = set(hosts)

    @property
    def server(self) -> CallbackServer:
        if self._server is None:
            raise RuntimeError("ConsoleApp.server is not set")
        return self._server

    @server.setter
    def server(self, server: CallbackServer) -> None:
        self._server = server

    def url(self) -> str:
        """The console's URL, with the token (print it; it is the key to the page's actions)."""
        scheme = "http" if self.server.tls is False else "https"
        return f"{scheme}://{_hostport(self.server.host, self.server.port)}{PREFIX}?token={self.token}"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._answer(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response(environ, start_response)

    # ---- routing --------------------------------------------------------------------------------

    def _answer(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused:
            return _json({"error": refused}, 403)
        path = request.path
        if path in ("/", "") and request.method == "GET":
            return Response(_page(), content_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)
        if not path.startswith("/api/"):
            return _json({"error": f"no such page: {path}"}, 404)
        if not hmac.compare_digest(request.headers.get("X-Voicecb-Token", ""), self.token):
            return _json({"error": "missing or wrong token: open the URL voicecb serve printed"}, 403)
        try:
            return self._api(request, path[len("/api/") :])
        except (TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)

    def _refused(self, request: Request) -> str:
        """Why a request is refused ('' when it is not): a foreign ``Host`` or ``Origin``."""
        allowed = own_hosts(self.server.host, self.server.port) | self.hosts
        host = request.headers.get("Host", "")
        if host not in allowed:
            return f"Host {host!r} is not this server's address"
        origin = request.headers.get("Origin")
        if foreign_origin(origin, allowed):
            return f"Origin {origin!r} is another site"
        if request.method == "POST" and request.mimetype != "application/json":
            return "POST requests must be application/json"
        return ""

    def _api(self, request: Request, what: str) -> Response:
        if what == "callbacks" and request.method == "GET":
            args = request.args
            before = args.get("before")
            items = self.feed.summaries(
                after=_int(args.get("after", "0"), "after"),
                before=None if not before else _int(before, "before"),
                limit=min(_int(args.get("limit", "200"), "limit"), _LIMIT),
                kind=args.get("kind", ""),
                callid=args.get("callid", ""),
                verdict=args.get("verdict", ""),
                oldest=args.get("oldest", "") == "1",
            )
            return _json({"items": items, "total": len(self.feed), "last": self.feed.last, "epoch": self.feed.epoch})
        if what.startswith("callbacks/") and request.method == "GET":
            found = self.feed.detail(_int(what.partition("/")[2], "callback number"))
            return _json(found) if found is not None else _json({"error": "no such callback (cleared?)"}, 404)
        if what == "script" and request.method == "POST":
            return _json({"scripted": self._script(request.get_json(silent=True))})
        if what == "clear" and request.method == "POST":
            self.feed.clear()
            return _json({"cleared": True})
        return _json({"error": f"no such API call: {request.method} {what}"}, 404)

    def _script(self, data: object) -> str:
        """Script the server's next replies from the page."""
        if not isinstance(data, dict) or data.get("reply") not in _REPLIES:
            raise ValueError(f"expected {{'reply': one of {', '.join(_REPLIES)}, 'times': n}}, got {data!r}")
        times = _int(str(data.get("times", 1)), "times")
        if not 1 <= times <= 10_000:
            raise ValueError(f"times must be from 1 to 10000, got {times}")
        delay = float(data.get("delay", 3.0))
        if not 0 <= delay <= 120:
            raise ValueError(f"delay must be from 0 to 120 seconds, got {delay:g}")
        reply = data["reply"]
        if reply == "ok":
            self.server.reply_with(result=0, errmsg="OK", times=times)
        elif reply == "error":
            self.server.reply_with(result=1, errmsg="rejected from the voicecb console", times=times)
        elif reply == "delay":
            self.server.reply_with(result=0, errmsg="OK", delay=delay, times=times)
        else:
            self.server.drop_connection(times)
        what = {"ok": "OK", "error": "an error", "delay": f"OK after {delay:g} s", "drop": "a dropped connection"}
        return f"the next {times} repl{'y' if times == 1 else 'ies'}: {what[reply]}"


_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}


def _page() -> str:
    return asset("console.html").replace("/*CSS*/", asset("console.css")).replace("/*JS*/", asset("console.js"))


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status, content_type="application/json")


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {text[:40]!r}") from None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
