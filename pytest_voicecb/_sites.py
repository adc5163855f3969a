"""Same-site checks for our local servers (the serve console, the provider's control and send APIs).

A browser names the site it thinks it talks to in ``Host`` (a DNS-rebinding page names its own domain)
and the page that sent a request in ``Origin`` (a form on another site names that site); it also says
``Sec-Fetch-Site`` and, for a request a page may send without asking (CORS "simple"), uses a form or
text content type. Near the bottom: every server imports it; it imports only ``_text``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from pytest_voicecb._text import media_type

__all__ = ["browser_request", "foreign_origin", "is_loopback", "own_host", "own_hosts"]

SIMPLE_TYPES = ("text/plain", "multipart/form-data")
"""Content types a page on any site may POST without a CORS preflight and no SDK sends (the third,
``application/x-www-form-urlencoded``, is the API 3.0 SDK's old signing; each API refuses it itself)."""


def own_hosts(host: str, port: int | str) -> set[str]:
    """The ``Host`` values naming a server bound to ``host``:``port`` here: its address and the loopback names."""
    bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {bound, f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


def own_host(header: str | None, hosts: set[str], *, remote: bool = False) -> bool:
    """Whether a request's ``Host`` names this server: one of ``hosts``, or an IP address with its port
    (a rebinding page cannot make a browser send one); with ``remote`` (bound for other hosts, e.g. in
    docker-compose) also a one-label name such as ``provider:9100`` (a rebinding page needs a domain)."""
    if not header:
        return False
    if header in hosts:
        return True
    name, _, port = header.rpartition(":")
    if not name or not any(h.endswith(f":{port}") for h in hosts):
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return remote and "." not in name and name.replace("-", "").replace("_", "").isalnum()


def foreign_origin(origin: str | None, hosts: set[str]) -> bool:
    """Whether a request's ``Origin`` is another site's (no ``Origin``: not a browser's cross-site request);
    ``http://`` and ``https://`` (a server with ``tls``) name the same site on the same port."""
    return origin is not None and origin.removeprefix("http://").removeprefix("https://") not in hosts


def browser_request(headers: Mapping[str, str], hosts: set[str]) -> str:
    """Why a request looks sent by a browser page from another site ('' when it does not): a foreign
    ``Origin``, ``Sec-Fetch-Site: cross-site`` or ``same-site``, or a form or text body. ``headers`` keys are
    lower-case."""
    origin = headers.get("origin")
    if foreign_origin(origin, hosts):
        return f"Origin {origin!r} is another site"
    fetch_site = headers.get("sec-fetch-site", "").lower()
    if fetch_site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site is {fetch_site}"
    content_type = media_type(headers.get("content-type"))
    if content_type in SIMPLE_TYPES:
        return f"Content-Type {content_type} is what a page on another site can send; the SDKs send JSON"
    return ""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``serve`` and ``provider`` refuse anything
    else without ``--allow-remote``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
