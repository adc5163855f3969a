"""TLS for the test doubles and their clients: a throw-away test CA, server certificates, trusted clients.

The servers (``CallbackServer(tls=True)``, ``Provider(tls=True)``, ``voicecb serve/provider --tls``) get a
certificate for loopback from one CA made for this process by trustme (the ``pytest-voicecb[tls]``
extra, imported only when TLS is asked for). The CA's certificate is written to a PEM file, ``ca_path``,
for clients to trust without disabling verification; it is removed when the process exits.

The handshake runs in the connection's worker thread, never in the accept loop, bounded as a request
head is: the first byte within ``timeout``, the whole handshake within ``header_timeout`` of it.
"""

from __future__ import annotations

import atexit
import os
import selectors
import shutil
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = [
    "INSTALL_HINT",
    "PlainHttp",
    "client_context",
    "handshake",
    "host_context",
    "server_context",
    "untrusted_reason",
]

INSTALL_HINT = "TLS needs trustme, which is not installed: pip install 'pytest-voicecb[tls]'"

_HANDSHAKE_RECORD = b"\x16"  # the content type of a TLS handshake record, a ClientHello's first byte
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_lock = threading.Lock()
_ca: tuple[Any, str] | None = None  # (trustme.CA, the PEM file of its certificate)
_host_contexts: dict[str, ssl.SSLContext] = {}


def _test_ca() -> tuple[Any, str]:
    """This process's test CA and its PEM file, made at the first use."""
    global _ca
    with _lock:
        if _ca is None:
            try:
                import trustme
            except ImportError:
                raise ImportError(INSTALL_HINT) from None
            ca = trustme.CA(organization_name="pytest-voicecb test CA")
            folder = tempfile.mkdtemp(prefix="voicecb-ca-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            path = os.path.join(folder, "ca.pem")
            ca.cert_pem.write_to_path(path)
            _ca = (ca, path)
        return _ca


def server_context(tls: bool | ssl.SSLContext, host: str) -> tuple[ssl.SSLContext | None, str | None]:
    """The server's TLS context and the CA file clients should trust (None for your own context).

    ``tls=True``: a certificate from the test CA for ``127.0.0.1``, ``localhost``, ``::1`` and ``host``.
    """
    if isinstance(tls, ssl.SSLContext):
        return tls, None
    if tls is False:
        return None, None
    if tls is not True:
        raise TypeError(f"tls must be True, False or an ssl.SSLContext, got {tls!r}")
    ca, path = _test_ca()
    names = list(_LOOPBACK) + ([host] if host and host not in _LOOPBACK and host not in ("0.0.0.0", "::") else [])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context, path


def host_context(host: str) -> ssl.SSLContext:
    """A server context with a test-CA certificate for ``host`` (a provider host reached through a tunnel)."""
    with _lock:
        found = _host_contexts.get(host)
    if found is None:
        ca, _ = _test_ca()
        found = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(host).configure_cert(found)
        with _lock:
            found = _host_contexts.setdefault(host, found)
    return found


def client_context(cacert: str | os.PathLike[str] | None, insecure: bool) -> ssl.SSLContext:
    """A client context trusting ``cacert`` (a PEM file) only, the system's CAs without it (``SSL_CERT_FILE``
    is honoured), or nothing at all with ``insecure`` (no verification: say so where it is chosen)."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if cacert is None:
        return ssl.create_default_context()
    where = Path(cacert)
    try:
        return ssl.create_default_context(cafile=os.fspath(where))
    except FileNotFoundError:
        raise ValueError(f"cacert {str(where)!r}: no such file (a PEM file of the CA to trust)") from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"cacert {str(where)!r} is not a readable PEM certificate file: {reason}") from None


def untrusted_reason(host: str, exc: ssl.SSLCertVerificationError) -> str:
    """What a client says when a server's certificate is not trusted: which host, why, and the fix."""
    why = exc.verify_message or exc.reason or str(exc)
    return (
        f"the TLS certificate of {host} is not trusted ({why}); trust the CA that issued it: "
        "--cacert FILE on the command line, cacert=FILE in Python (voicecb's servers print and expose "
        "theirs as ca_path)"
    )


class PlainHttp(Exception):
    """A client spoke plain HTTP to the HTTPS port (its first byte is not a TLS record's)."""


def handshake(sock: socket.socket, context: ssl.SSLContext, *, timeout: float, header_timeout: float) -> ssl.SSLSocket:
    """The server side of a TLS handshake on ``sock`` (non-blocking, just accepted): the encrypted socket.

    Raises ``TimeoutError`` when nothing arrived within ``timeout`` or the handshake took longer than
    ``header_timeout`` from its first byte, ``EOFError`` when the client closed before sending anything,
    ``PlainHttp`` when the client sent plain HTTP (``sock`` is left open, to answer it), and
    ``ssl.SSLError``/``OSError`` when the handshake failed.
    """
    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"no TLS handshake began within {timeout:g} s")
        selector.unregister(sock)
        first = sock.recv(1, socket.MSG_PEEK)
        if not first:
            raise EOFError("the client closed the connection before a handshake")
        if first != _HANDSHAKE_RECORD:
            raise PlainHttp
        deadline = time.monotonic() + header_timeout
        secured = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        try:
            while True:
                try:
                    secured.do_handshake()
                    return secured
                except ssl.SSLWantReadError:
                    events = selectors.EVENT_READ
                except ssl.SSLWantWriteError:
                    events = selectors.EVENT_WRITE
                left = min(deadline - time.monotonic(), timeout)
                selector.register(secured, events)
                ready = left > 0 and selector.select(left)
                selector.unregister(secured)
                if not ready:
                    raise TimeoutError(f"the TLS handshake was not complete within {header_timeout:g} s")
        except BaseException:
            secured.close()  # it owns the file descriptor now
            raise
