"""Proxy mode: an SDK keeps the real endpoint and sends through the simulator as its HTTP proxy.

A client configured with a proxy sends the whole URL in its request line (``POST
http://vms.tencentcloudapi.com/ HTTP/1.1``). The simulator answers such requests itself when they are
for the provider's own hosts (API 3.0's ``vms.tencentcloudapi.com`` and ``vms.<region>.tencentcloudapi.com``,
the legacy API's ``cloud.tim.qq.com``, earlier ``yun.tim.qq.com``) or for its own address, and refuses
every other host with a 403: it never forwards anything, so it is never an open proxy.

``CONNECT`` (a tunnel, what the Node.js SDK's proxy agent sends even for ``http``) to one of those hosts
opens a tunnel into the simulator itself: to port 443 inside TLS with a certificate for that host from
the test CA (only when the simulator serves TLS itself, ``--tls``, so the client can trust ``ca_path``),
to any other port in plain HTTP. ``CONNECT`` to port 443 of a plain simulator is refused with a reason
saying to use the SDK's ``http`` protocol or ``--tls``; to any other host, a 403.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = ["REAL_ENDPOINT", "STARTUP_HINT", "TLS_STARTUP_HINT", "Refusal", "refusal", "tunnel_host", "tunnel_is_tls"]

REAL_ENDPOINT: Final = "vms.tencentcloudapi.com"
_OWN_HOSTS: Final = re.compile(r"vms(\.[a-z0-9-]+)?\.tencentcloudapi\.com|cloud\.tim\.qq\.com|yun\.tim\.qq\.com")
_SERVED: Final = "vms.tencentcloudapi.com, vms.<region>.tencentcloudapi.com and cloud.tim.qq.com"
STARTUP_HINT: Final = f"(also the SDK's proxy: keep endpoint {REAL_ENDPOINT}, protocol http)"
"""Printed next to the address at start-up."""
TLS_STARTUP_HINT: Final = f"(also the SDK's proxy, as http://: keep endpoint {REAL_ENDPOINT} and https, trust ca_path)"
"""Printed next to the address at start-up with ``--tls``."""
_CONNECT_REASON: Final = "CONNECT refused: the voicecb simulator speaks plain http; set the SDK's protocol to http"


def tunnel_is_tls(authority: str) -> bool:
    """A ``CONNECT`` to port 443 carries TLS; to any other port, plain HTTP."""
    return authority.rsplit(":", 1)[-1] == "443"


def tunnel_host(authority: str) -> str:
    return authority.rsplit(":", 1)[0].strip("[]")


class Refusal(NamedTuple):
    """A proxy request refused: ``status``, the status line's ``reason`` (empty: the usual phrase), the
    ``message`` for the body; ``close`` ends the connection after it (a client may send TLS next)."""

    status: int
    reason: str
    message: str
    close: bool = False


def refusal(method: str, authority: str, own: set[str], *, tls_tunnels: bool = False) -> Refusal | None:
    """The answer to a proxy request the simulator does not serve, or None to serve it.

    ``authority`` is the request target's ``host[:port]`` (empty for an ordinary request, always served);
    ``own`` the simulator's own ``host:port`` names (absolute-form requests to them are ordinary ones).
    ``tls_tunnels``: a ``CONNECT`` to port 443 can be served (the simulator has the test CA).
    """
    host = authority.rsplit(":", 1)[0] if not authority.endswith("]") else authority
    if method == "CONNECT" and _OWN_HOSTS.fullmatch(host) and (tls_tunnels or not tunnel_is_tls(authority)):
        return None
    if method == "CONNECT" and _OWN_HOSTS.fullmatch(host):
        message = (
            f"the simulator cannot answer HTTPS through a proxy (CONNECT {authority}) unless it serves TLS "
            "itself: start it with --tls (Provider(tls=True)) and trust its ca_path, or use the SDK's http "
            'protocol with the proxy: HttpProfile(protocol="http", proxy=...) in Python, '
            'httpProfile.protocol = "http://" in Node.js'
        )
        return Refusal(405, _CONNECT_REASON, message, close=True)
    if method != "CONNECT" and (not authority or authority in own or _OWN_HOSTS.fullmatch(host)):
        return None
    message = (
        f"the simulator is not a proxy: it answers only for the provider's own hosts ({_SERVED}), "
        f"not {authority}; nothing was forwarded"
    )
    return Refusal(403, "", message)
