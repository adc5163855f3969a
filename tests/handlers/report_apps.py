"""WSGI apps that make big or hostile conformance reports (the HTML report's tests and its benchmark)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

HOSTILE = b'<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
ERROR_PAGE = b"<html><body>" + b"<p>Internal Server Error: something broke deep inside</p>" * 300 + b"</body></html>"


def hostile_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Answers OK, except a 500 with a hostile HTML body for keypress and prompt callbacks."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if b"keypress" in body or b"prompt" in body:
        start_response("500 Oops", [("Content-Type", "text/html")])
        return [HOSTILE]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"result":0,"errmsg":"OK"}']


def failing_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The worst case for the report's size: every check fails with a 20 KB page and a long traceback."""
    frames = "".join(f'  File "/srv/app/callbacks.py", line {n}, in handle\n    step_{n}()\n' for n in range(30))
    environ["wsgi.errors"].write(f"Traceback (most recent call last):\n{frames}KeyError: {'x' * 300}\n")
    start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/html")])
    return [ERROR_PAGE]
