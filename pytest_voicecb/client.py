"""Deliver callbacks to a handler and capture its reply: in-process (WSGI or ASGI) or over HTTP.

``CallbackClient(target)`` takes what the integrator has: a WSGI app (Flask, Django's
``get_wsgi_application()``), an ASGI app (FastAPI, Starlette, a plain ``async def app(scope, receive,
send)``), an ``http(s)://`` URL (or a bare ``host:port[/path]``), or a ``"module:attribute"`` string
naming one of those. In-process apps are called directly, without sockets, with the environ a real
server builds; ASGI apps go through a2wsgi (with the lifespan startup and shutdown a server would run)
so both in-process paths share one code path. Every delivery returns a ``Reply``, whatever the handler
does: an app that raises gives a 500 reply (as a server would answer), and only a delivery that gets
no whole reply (connection refused, timeout, a hung app, a reply cut short or with an interim 1xx
status) raises ``DeliveryError``.

The data (``SentRequest``, ``Reply``) lives in ``_models``, the transports in ``_transports``, the
errors in ``errors`` and the curl reproducer in ``repro``; this module holds the targets and the client.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence

from werkzeug.datastructures import Headers

from pytest_voicecb import _arguments
from pytest_voicecb._models import Reply, SentRequest
from pytest_voicecb._text import shorten
from pytest_voicecb._tls import client_context
from pytest_voicecb._transports import HttpTransport, Transport, WsgiTransport
from pytest_voicecb.asgi import AsgiBridge, is_asgi
from pytest_voicecb.contract import CALLBACK_MODELS, DEFAULT_PATH, JSON_CONTENT_TYPE, encode, kind_named
from pytest_voicecb.errors import DeliveryError, TargetError
from pytest_voicecb.repro import redact_header, redact_url
from pytest_voicecb.values import Case, Variant

__all__ = [
    "DEFAULT_PATH",
    "IN_PROCESS_BASE_URL",
    "MAX_REPLY_SIZE",
    "CallbackClient",
    "DeliveryError",
    "Reply",
    "SentRequest",
    "TargetError",
    "describe_target",
    "resolve_target",
]

IN_PROCESS_BASE_URL = "http://localhost:8000"
"""The host an in-process app is told it runs on, and the placeholder in its curl reproducers."""

MAX_REPLY_SIZE = 1024 * 1024
"""Replies are read up to this many bytes (1 MiB) and marked ``truncated`` beyond it."""


# ---- targets --------------------------------------------------------------------------------------


_HOST_PORT = re.compile(r"([^@/\s]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]+(/.*)?", re.DOTALL)
"""``host:port[/path]``: a URL without its scheme (a ``module:attribute`` never has an all-digit attribute)."""


def resolve_target(target: object) -> object:
    """A target as given, with ``"module:attribute"`` strings imported; URLs are returned unchanged.

    ``host:port[/path]`` without a scheme is an ``http://`` URL. Raises ``TargetError`` (or ``TypeError``
    for something that is not a target at all), with any ``user:password@`` in a URL redacted.
    """
    if isinstance(target, str):
        spec = target.strip()
        if _HOST_PORT.fullmatch(spec):
            spec = "http://" + spec
        shown = redact_url(spec)
        if _is_url(spec):
            _check_url(spec)
            return spec
        module_name, sep, attribute = spec.partition(":")
        if attribute.startswith("//"):
            raise TargetError(f"target {shown!r}: only http:// and https:// URLs can be delivered to")
        if not sep or not module_name or not attribute:
            raise TargetError(
                f"target {shown!r} is neither a URL (http://host:port/path) nor a 'module:attribute' "
                "naming a WSGI or ASGI app (e.g. 'myproject.wsgi:application')"
            )
        try:
            obj: object = importlib.import_module(module_name)
        except ImportError as exc:
            raise TargetError(f"target {shown!r}: cannot import module {module_name!r}: {exc}") from exc
        for part in attribute.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise TargetError(f"target {shown!r}: module {module_name!r} has no attribute {attribute!r}") from None
        target = obj
    if isinstance(target, (bytes, bytearray)) or not callable(target):
        raise TypeError(
            "a target is a WSGI app, an ASGI app, an http(s):// URL or a 'module:attribute' string; "
            f"got {type(target).__name__} {shorten(repr(target), 60)}"
        )
    _refuse_factory(target)
    return target


def _refuse_factory(target: object) -> None:
    """``TargetError`` for an app factory (``create_app``) passed where the app it returns belongs.

    A WSGI app takes two positional arguments and an ASGI app three; a callable taking none is a factory.
    """
    try:
        signature = inspect.signature(target)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return  # a builtin or C callable: nothing to tell
    for arguments in ((None, None), (None, None, None)):
        try:
            signature.bind(*arguments)
            return
        except TypeError:
            pass
    try:
        signature.bind()
    except TypeError:
        return  # neither an app nor a factory: let the first delivery say what happens
    name = getattr(target, "__name__", None) or "create_app"
    raise TargetError(
        f"target {_name_of(target)} takes no arguments, so it is an app factory, not a WSGI or ASGI app: "
        f"call it: return {name}()"
    )


def describe_target(target: object) -> str:
    """A short description for reports: the URL, or the app and how it is driven."""
    if isinstance(target, str):
        return redact_url(target)
    return f"{_name_of(target)} (in-process {'ASGI' if is_asgi(target) else 'WSGI'})"


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _name_of(obj: object) -> str:
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    text = repr(obj)
    if len(text) <= 80 and " object at 0x" not in text:
        return text
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-and-query) of an http(s) URL; ``TargetError`` for a malformed one."""
    shown = redact_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"bad target URL {shown!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"bad target URL {shown!r}: expected http://host[:port][/path]")
    path = parts.path or ""
    if parts.query:
        path += "?" + parts.query
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), path


def _basic_auth(url: str) -> str | None:
    """The ``Authorization`` header for a URL's ``user:password@``, as curl and requests send it."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return None
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


# ---- the client -----------------------------------------------------------------------------------


class CallbackClient:
    """Delivers callbacks to one target and returns each ``Reply``.

    ``path`` is where callbacks go (default: the URL's own path, else ``/voice/callback``); ``timeout``
    bounds each whole delivery: connecting, sending, and the reply's status line, headers and body
    (None: no bound, and in-process apps then run in the calling thread, which
    matters when a handler must share thread-local state such as pytest-django's test database;
    otherwise they run in a worker thread so a hung app becomes a ``DeliveryError``); replies are read
    up to ``max_reply_size`` bytes. ``paths`` maps callback kinds (``prompt`` or
    ``voiceprompt_callback``) to their own paths, for handlers with one URL per kind. ``remote_addr`` is
    the client address an in-process app sees. ``redact`` (default) hides credentials (Authorization,
    Cookie, Proxy-Authorization, ``user:pass@``) in messages and reproducers. For ``https://`` URLs,
    ``cacert`` is a PEM file of the CA to trust instead of the system's (``server.ca_path`` of a voicecb
    server with ``tls=True``), and ``insecure=True`` verifies nothing (say so where you choose it); a
    certificate not trusted is a ``DeliveryError`` naming the host and the fix. Use as a context manager,
    or call ``close()``.
    """

    def __init__(
        self,
        target: object,
        *,
        path: str | None = None,
        timeout: float | None = 5.0,
        max_reply_size: int = MAX_REPLY_SIZE,
        base_url: str = IN_PROCESS_BASE_URL,
        paths: Mapping[str, str] | None = None,
        remote_addr: str = "127.0.0.1",
        redact: bool = True,
        cacert: str | os.PathLike[str] | None = None,
        insecure: bool = False,
    ) -> None:
        self.timeout = _arguments.optional_seconds("timeout", timeout)
        self.max_reply_size = _arguments.whole("max_reply_size", max_reply_size, minimum=1)
        self.paths = _check_paths(paths)
        self.remote_addr = _check_address(remote_addr)
        if not isinstance(redact, bool):
            raise TypeError(f"redact must be True or False, got {redact!r}")
        if not isinstance(insecure, bool):
            raise TypeError(f"insecure must be True or False, got {insecure!r}")
        self.redact = redact
        self.target = resolve_target(target)
        self.description = describe_target(self.target)
        self.closed = False
        self._authorization: str | None = None
        self._transport: Transport
        if isinstance(self.target, str):
            scheme, host, port, url_path = _check_url(self.target)
            default_port = (scheme, port) in (("http", 80), ("https", 443))
            shown_host = f"[{host}]" if ":" in host else host
            self.base_url = f"{scheme}://{shown_host}" + ("" if default_port else f":{port}")
            self.path = _check_path(path if path is not None else (url_path or DEFAULT_PATH))
            self._authorization = _basic_auth(self.target)
            context = client_context(cacert, insecure) if scheme == "https" else None
            self._transport = HttpTransport(scheme, host, port, context)
        else:
            if not isinstance(base_url, str):
                raise TypeError(f"base_url must be an http(s):// URL, got {type(base_url).__name__}")
            self.base_url = base_url.rstrip("/")
            _check_url(self.base_url)
            self.path = _check_path(path if path is not None else DEFAULT_PATH)
            app = AsgiBridge(self.target) if is_asgi(self.target) else self.target
            self._transport = WsgiTransport(app, self.base_url, self.remote_addr)

    @property
    def url(self) -> str:
        """The URL callbacks are delivered to (for in-process targets, with the placeholder host)."""
        return self.base_url + self.path

    def __repr__(self) -> str:
        return f"CallbackClient({self.description}, path={self.path!r})"

    def __enter__(self) -> CallbackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the keep-alive connection, or run an ASGI app's lifespan shutdown; ``post()`` then refuses."""
        self.closed = True
        self._transport.close()

    def post(
        self,
        data: object,
        *,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Deliver ``data`` and return the reply.

        ``data`` is a payload (a dict, encoded as the provider does), a ``Case`` from the malformed corpus
        (sent with its own body and content type), a ``Variant``, or raw ``bytes`` / ``str``. It goes to
        ``path``, else its kind's path in ``paths``, else the client's path. ``timeout`` (default: the
        client's) bounds the whole delivery. Raises ``DeliveryError`` when no whole reply comes back in time.
        """
        __tracebackhide__ = True
        request, target_path = self._request(data, path, headers, content_type)
        limit = self.timeout if timeout is None else _arguments.optional_seconds("timeout", timeout)
        return self._transport.deliver(request, target_path, limit, self.max_reply_size)

    def post_concurrently(
        self,
        items: Sequence[object],
        *,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> list[Reply | DeliveryError]:
        """Deliver every item at the same moment and return, in order, each one's ``Reply`` or ``DeliveryError``.

        For races a handler must survive: a duplicate delivered twice at once, a call's status and
        failure callbacks arriving together. All deliveries wait at a barrier and are then sent at once,
        over HTTP each on its own connection (opened before the barrier), in-process each in its own
        thread calling the app, as a threaded server would. ``timeout`` bounds the whole batch.
        """
        __tracebackhide__ = True
        if isinstance(items, (str, bytes, bytearray, Mapping)) or not isinstance(items, Sequence):
            raise TypeError(
                "post_concurrently() takes a sequence of items to post (payloads, Cases, bytes), "
                f"got {type(items).__name__}"
            )
        requests = []
        for item in items:  # a loop, not a comprehension: its frame would show in tracebacks
            requests.append(self._request(item, path, headers, None))
        limit = self.timeout if timeout is None else _arguments.optional_seconds("timeout", timeout)
        if not requests:
            return []
        return self._transport.deliver_concurrently(requests, limit, self.max_reply_size)

    def _request(
        self, data: object, path: str | None, headers: Mapping[str, str] | None, content_type: str | None
    ) -> tuple[SentRequest, str]:
        """The request ``post()`` sends for ``data``, and the path it goes to."""
        __tracebackhide__ = True
        if self.closed:
            raise RuntimeError(f"{self!r} is closed")
        body, default_type = _body_of(data)
        send_headers = Headers()
        if self._authorization is not None:
            send_headers["Authorization"] = self._authorization
        content_type = default_type if content_type is None else _check_header("Content-Type", str(content_type))
        if content_type:
            send_headers["Content-Type"] = content_type
        if headers is not None:
            if not isinstance(headers, Mapping):
                raise TypeError(f"headers must be a mapping of names to values, got {type(headers).__name__}")
            for name, value in headers.items():
                send_headers[str(name)] = _check_header(str(name), str(value))
        if path is not None:
            target_path = _check_path(path)
        else:
            kind = _kind_of(data)
            target_path = self.paths.get(kind, self.path) if kind is not None else self.path
        request = SentRequest(
            "POST",
            self.base_url + target_path,
            send_headers,
            body,
            in_process=not isinstance(self.target, str),
            redact=self.redact,
        )
        return request, target_path


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_header(name: str, value: str) -> str:
    """``value`` when HTTP can carry the header as given; ``ValueError`` saying why not."""
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)")
    shown = redact_header(name, value)
    if any(char in value for char in "\r\n\0"):
        raise ValueError(f"header {name}: value {shown!r} holds a line break or NUL, which HTTP cannot carry")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            f"header {name}: value {shown!r} has characters beyond latin-1; HTTP headers carry bytes: "
            "percent-encode or base64 the value"
        ) from None
    return value


def _check_address(address: object) -> str:
    """An IP address for ``REMOTE_ADDR``; ``ValueError`` for anything else."""
    try:
        if not isinstance(address, str):
            raise ValueError
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ValueError(f"remote_addr must be an IP address such as '127.0.0.1', got {address!r}") from None


def _check_paths(paths: Mapping[str, str] | None) -> dict[str, str]:
    """``paths`` keyed by full kind names; ``ValueError`` naming the kinds for anything unknown."""
    if paths is None:
        return {}
    if not isinstance(paths, Mapping):
        raise TypeError(f"paths must map callback kinds to paths, got {type(paths).__name__}")
    checked: dict[str, str] = {}
    for name, kind_path in paths.items():
        try:
            kind = kind_named(name) if isinstance(name, str) else kind_named(repr(name))
        except ValueError as exc:
            raise ValueError(f"paths: {exc}") from None
        checked[kind] = _check_path(kind_path)
    return checked


def _kind_of(data: object) -> str | None:
    """The callback kind ``data`` holds (a payload, Variant or Case), or None when it says none."""
    if isinstance(data, Case):
        return data.kind
    if isinstance(data, Variant):
        data = data.payload
    if isinstance(data, Mapping):
        kinds = [kind for kind in CALLBACK_MODELS if kind in data]
        if len(kinds) == 1:
            return kinds[0]
    return None


def _check_path(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or not path.isprintable() or " " in path:
        raise ValueError(
            f"path must start with '/' and hold no spaces, line breaks or control characters, got {path!r}"
        )
    return path


def _body_of(data: object) -> tuple[bytes, str | None]:
    """The bytes to send for ``data`` and the content type that goes with them."""
    __tracebackhide__ = True
    if isinstance(data, Case):
        return data.body, data.content_type or None
    if isinstance(data, Variant):
        return encode(data.payload), JSON_CONTENT_TYPE
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), JSON_CONTENT_TYPE
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass"), JSON_CONTENT_TYPE
    try:
        return encode(data), JSON_CONTENT_TYPE
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "post() takes a payload (a JSON-serializable dict), a Case, a Variant, bytes or str; "
            f"got {type(data).__name__} {shorten(repr(data), 60)}: {exc}"
        ) from None
