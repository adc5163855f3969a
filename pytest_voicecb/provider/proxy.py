"""Proxy mode: an SDK keeps the real endpoint and sends through the simulator as its HTTP proxy.

A client configured with a proxy sends the whole URL in its request line (``POST
http://vms.tencentcloudapi.com/ HTTP/1.1``). The simulator answers such requests itself when they are
for the provider's own hosts (API 3.0's ``vms.tencentcloudapi.com`` and ``vms.<region>.tencentcloudapi.com``,
the legacy API's ``cloud.tim.qq.com``, earlier ``yun.tim.qq.com``) or for its own address, and refuses
every other host with a 403: it never forwards anything, so it is never an open proxy. ``CONNECT`` (HTTPS
through a proxy) is refused with a reason saying to use the SDK's ``http`` protocol, since the simulator
cannot answer inside a TLS tunnel to the real host.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = ["REAL_ENDPOINT", "STARTUP_HINT", "Refusal", "refusal"]

REAL_ENDPOINT: Final = "vms.tencentcloudapi.com"
_OWN_HOSTS: Final = re.compile(r"vms(\.[a-z0-9-]+)?\.tencentcloudapi\.com|cloud\.tim\.qq\.com|yun\.tim\.qq\.com")
_SERVED: Final = "vms.tencentcloudapi.com, vms.<region>.tencentcloudapi.com and cloud.tim.qq.com"
STARTUP_HINT: Final = f"(also the SDK's proxy: keep endpoint {REAL_ENDPOINT}, protocol http)"
"""Printed next to the address at start-up."""
_CONNECT_REASON: Final = "CONNECT refused: the voicecb simulator speaks plain http; set the SDK's protocol to http"


class Refusal(NamedTuple):
    """A proxy request refused: ``status``, the status line's ``reason`` (empty: the usual phrase), the
    ``message`` for the body; ``close`` ends the connection after it (a client may send TLS next)."""

    status: int
    reason: str
    message: str
    close: bool = False


def refusal(method: str, authority: str, own: set[str]) -> Refusal | None:
    """The answer to a proxy request the simulator does not serve, or None to serve it.

    ``authority`` is the request target's ``host[:port]`` (empty for an ordinary request, always served);
    ``own`` the simulator's own ``host:port`` names (absolute-form requests to them are ordinary ones).
    """
    if method == "CONNECT":
        message = (
            f"the simulator cannot answer HTTPS through a proxy (CONNECT {authority}): it would have to be "
            f"{authority.split(':')[0]}. Use the SDK's http protocol with the proxy: "
            'HttpProfile(protocol="http", proxy=...) in Python, httpProfile.protocol = "http://" in Node.js'
        )
        return Refusal(405, _CONNECT_REASON, message, close=True)
    if not authority or authority in own:
        return None
    host = authority.rsplit(":", 1)[0] if not authority.endswith("]") else authority
    if _OWN_HOSTS.fullmatch(host):
        return None
    message = (
        f"the simulator is not a proxy: it answers only for the provider's own hosts ({_SERVED}), "
        f"not {authority}; nothing was forwarded"
    )
    return Refusal(403, "", message)
