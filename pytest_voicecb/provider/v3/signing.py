"""TC3-HMAC-SHA256, as API 3.0 signs a request (the official SDK's ``AbstractClient._get_tc3_signature``).

canonical request = method, URI, query, ``name:value`` lines of the signed headers (lower-case,
trimmed), the signed header names, and sha256 of the payload (or ``UNSIGNED-PAYLOAD``); string to
sign = algorithm, timestamp, credential scope ``date/service/tc3_request``, sha256 of the canonical
request; the key is derived by HMAC-SHA256 from ``"TC3" + secret_key`` over date, service and
``tc3_request``.

Which service the credential scope names depends on the SDK (read in each official SDK's source):

- Python (``tencentcloud-sdk-python``) and Go (``tencentcloud-sdk-go``, ``request.GetService()``) pass the
  product's name, ``vms``, whatever the endpoint;
- Node.js (``tencentcloud-sdk-nodejs``, ``AbstractClient``: ``service: this.endpoint.split(".")[0]``),
  Java (``tencentcloud-sdk-java``, ``AbstractClient``: ``endpoint.split("\\.")[0]``) and PHP
  (``tencentcloud-sdk-php``, ``AbstractClient``: ``explode(".", $endpoint)[0]``) take the endpoint's first
  label: ``vms`` for the real ``vms.tencentcloudapi.com``, but ``127`` for the simulator's printed
  ``127.0.0.1:PORT``, and ``localhost:PORT`` (no dot, so the port stays) for ``localhost:PORT``.

The endpoint is what the SDK sends as ``Host``, so :func:`scope_services` accepts ``vms`` or the first
label of the request's ``Host`` (with and without its port), and nothing else. The canonical ``host``
header differs too: the Node.js SDK sends ``Host: 127.0.0.1:PORT`` but signs ``host:127.0.0.1``
(``URL.hostname``, no port), so :func:`signature_matches` takes either (the real service never sees a
port, so it cannot tell them apart either).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import NamedTuple

__all__ = [
    "ALGORITHM",
    "Authorization",
    "authorization_header",
    "parse_authorization",
    "scope_mismatch",
    "scope_services",
    "signature",
    "signature_matches",
]

ALGORITHM = "TC3-HMAC-SHA256"

_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/\s,]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/\s,]+)/tc3_request,\s*"
    r"SignedHeaders=(?P<headers>[a-z0-9;._-]+),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)


_PORT = re.compile(r":\d*$")


class Authorization(NamedTuple):
    """The parts of an ``Authorization: TC3-HMAC-SHA256 ...`` header."""

    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """The header's parts, or None when it is not a TC3-HMAC-SHA256 authorization."""
    match = _AUTH.match(value.strip())
    if match is None:
        return None
    return Authorization(match["id"], match["date"], match["service"], tuple(match["headers"].split(";")), match["sig"])


def scope_services(host: str, service: str) -> tuple[str, ...]:
    """The credential-scope services a request sent to ``host`` may sign for: the product's ``service``,
    or the host's first label as the endpoint-derived SDKs compute it (``127`` for ``127.0.0.1:PORT``;
    ``localhost:PORT`` and ``localhost`` for ``localhost:PORT``)."""
    first = host.strip().split(".")[0]
    bare = _PORT.sub("", first)
    return tuple(dict.fromkeys(name for name in (service, first, bare) if name))


def scope_mismatch(auth: Authorization, *, timestamp: int, accepted: tuple[str, ...]) -> str | None:
    """Why the header's credential scope is refused (a wrong date or service), or None when it is accepted."""
    date = utc_date(timestamp)
    if auth.date == date and auth.service in accepted:
        return None
    expected = " or ".join(f"`{date}/{name}/tc3_request`" for name in accepted)
    return (
        f"The credential scope `{auth.date}/{_printable(auth.service)}/tc3_request` does not match {expected} "
        f"(the UTC date of X-TC-Timestamp; the service `{accepted[0]}`, or the first label of the Host the "
        "request was sent to, as SDKs that derive it from the endpoint sign)."
    )


def _printable(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode()[:64]


def utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")


def signature(
    secret_key: str,
    *,
    method: str,
    uri: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    payload: bytes,
    timestamp: int,
    service: str,
    unsigned_payload: bool = False,
) -> str:
    """The hex signature of a request (``headers`` keyed by lower-case name)."""
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_headers)
    payload_hash = hashlib.sha256(b"UNSIGNED-PAYLOAD" if unsigned_payload else payload).hexdigest()
    canonical = "\n".join([method, uri, query, canonical_headers, ";".join(signed_headers), payload_hash])
    date = utc_date(timestamp)
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join([ALGORITHM, str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = hmac.new(("TC3" + secret_key).encode(), date.encode(), hashlib.sha256).digest()
    key = hmac.new(key, service.encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def signature_matches(
    secret_key: str,
    auth: Authorization,
    *,
    method: str,
    uri: str,
    query: str,
    headers: Mapping[str, str],
    payload: bytes,
    timestamp: int,
    unsigned_payload: bool = False,
) -> bool:
    """Whether ``auth`` signs this request with ``secret_key``, its ``host`` as sent or without the port."""
    sent = headers.get("host", "")
    for host in dict.fromkeys((sent, _PORT.sub("", sent))):
        expected = signature(
            secret_key,
            method=method,
            uri=uri,
            query=query,
            headers={**headers, "host": host},
            signed_headers=auth.signed_headers,
            payload=payload,
            timestamp=timestamp,
            service=auth.service,
            unsigned_payload=unsigned_payload,
        )
        if hmac.compare_digest(expected, auth.signature):
            return True
    return False


def authorization_header(
    secret_id: str, secret_key: str, *, host: str, payload: bytes, timestamp: int, service: str = "vms"
) -> str:
    """The ``Authorization`` value for a JSON ``POST /`` (for clients without the SDK, and for tests)."""
    headers = {"content-type": "application/json", "host": host}
    sig = signature(
        secret_key,
        method="POST",
        uri="/",
        query="",
        headers=headers,
        signed_headers=("content-type", "host"),
        payload=payload,
        timestamp=timestamp,
        service=service,
    )
    date = utc_date(timestamp)
    scope = f"{secret_id}/{date}/{service}/tc3_request"
    return f"{ALGORITHM} Credential={scope}, SignedHeaders=content-type;host, Signature={sig}"
