"""Serve any test app on a loopback port, for the tests that go over real HTTP."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from pytest_voicecb.asgi import AsgiBridge, is_asgi


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve a WSGI or ASGI app with werkzeug's threaded server on 127.0.0.1; yields the base URL."""
    bridge = AsgiBridge(app) if is_asgi(app) else None
    wsgi = bridge or app

    def quiet(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["wsgi.errors"] = io.StringIO()  # tracebacks of the broken handlers are expected
        result: Iterable[bytes] = wsgi(environ, start_response)
        return result

    server = make_server("127.0.0.1", 0, quiet, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        if bridge is not None:
            bridge.close()
