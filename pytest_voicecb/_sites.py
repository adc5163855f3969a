"""Same-site checks for the pages our local servers serve (the serve console, the provider console).

A browser names the site it thinks it talks to in ``Host`` (a DNS-rebinding page names its own domain)
and the page that sent a request in ``Origin`` (a form on another site names that site). A leaf module:
both servers import it, neither imports the other.
"""

from __future__ import annotations

__all__ = ["foreign_origin", "own_hosts"]


def own_hosts(host: str, port: int | str) -> set[str]:
    """The ``Host`` values naming a server bound to ``host``:``port`` here: its address and the loopback names."""
    bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {bound, f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


def foreign_origin(origin: str | None, hosts: set[str]) -> bool:
    """Whether a request's ``Origin`` is another site's (no ``Origin``: not a browser's cross-site request)."""
    return origin is not None and origin.removeprefix("http://") not in hosts
