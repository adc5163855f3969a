"""Mounts: WSGI apps answering their own path prefixes on a ``CallbackServer``'s port (the web console).

A mounted path is not a callback: it is never recorded, scripted or counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from werkzeug.wrappers import Response

from pytest_voicecb import _text
from pytest_voicecb.server._wire import Incoming

__all__ = ["WsgiApp", "answer_mounted", "check_mounts", "mounted_prefix"]

_log = logging.getLogger("pytest_voicecb.server")

WsgiApp = Callable[..., Iterable[bytes]]


def check_mounts(mounts: Mapping[str, WsgiApp] | None) -> dict[str, WsgiApp]:
    """``mounts`` checked: path prefixes (``/_voicecb/``) to WSGI apps, longest prefix first."""
    found: dict[str, WsgiApp] = {}
    for prefix, app in (mounts or {}).items():
        if not isinstance(prefix, str) or not prefix.startswith("/") or not prefix.endswith("/"):
            raise ValueError(f"mounts: a prefix is a path starting and ending with '/', got {prefix!r}")
        if not callable(app):
            raise TypeError(f"mounts: {prefix!r} must map to a WSGI app, got {app!r}")
        found[prefix] = app
    return dict(sorted(found.items(), key=lambda item: -len(item[0])))


def answer_mounted(mounts: Mapping[str, WsgiApp], incoming: Incoming, host: str, port: int) -> Response | None:
    """A mounted app's answer to ``incoming``; the app sees ``SCRIPT_NAME`` as its prefix without the last
    slash. None when the app raised (logged): the caller answers 500."""
    from werkzeug.test import EnvironBuilder

    prefix = mounted_prefix(mounts, incoming.path)
    try:
        environ = EnvironBuilder(
            path=incoming.path[len(prefix) - 1 :],
            base_url=f"http://{incoming.headers.get('Host') or f'{host}:{port}'}{prefix[:-1]}",
            method=incoming.method,
            headers=incoming.headers,
            data=incoming.body,
            query_string=incoming.query,
        ).get_environ()
        return Response.from_app(mounts[prefix], environ, buffered=True)
    except Exception:
        _log.exception("the app mounted at %s failed on %s %s", prefix, incoming.method, _text.safe(incoming.path))
        return None


def mounted_prefix(mounts: Mapping[str, WsgiApp], path: str) -> str:
    """The longest mounted prefix ``path`` starts with (``mounts`` is checked: longest first)."""
    return next(prefix for prefix in mounts if path.startswith(prefix))
