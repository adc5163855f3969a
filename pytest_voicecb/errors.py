"""The errors pytest-voicecb raises, in one tree (as httpx's ``_exceptions.py`` draws its own).

```
* CallbackError(ValueError)           contract.py: a callback breaks the provider's contract
* ReplyContractError(AssertionError)  contract.py: a handler's reply breaks it
* TargetError(ValueError)             here: cannot deliver to that target (bad URL, unimportable app)
* DeliveryError(AssertionError)       here: a delivery got no whole reply (refused, timed out, hung, cut short)
```

The ``ValueError`` ones are a caller's mistake with a value; the ``AssertionError`` ones are verdicts
on the handler under test, so pytest shows them as failures, not errors, and code that retries on
``OSError`` never swallows them. The contract's two stay in ``contract.py``, next to the rules they
enforce. This module imports nothing of the package at run time, so anything may import it.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from pytest_voicecb._text import safe

if TYPE_CHECKING:
    from pytest_voicecb._models import SentRequest

__all__ = ["REPRODUCE", "DeliveryError", "TargetError"]

REPRODUCE = "reproduce (paste as is):"
"""The line before a curl reproducer in every message; the command follows flush left, so a body with
a line break survives copy and paste."""


class TargetError(ValueError):
    """A target that cannot be used: an unimportable ``module:attribute``, a bad URL, a failed ASGI startup."""


class DeliveryError(AssertionError):
    """A callback got no whole reply: connection refused, unknown host, timeout, an app that hung, or a
    reply cut short or with an interim (1xx) status.

    An ``AssertionError`` (not a ``ConnectionError``) because in a test it is a verdict on the handler,
    "it did not answer", and because user code that retries on ``OSError`` must not swallow it.
    ``unreachable`` is true when nothing could be connected to (refused, unknown host), ``timed_out``
    when the handler did not answer in time, so callers can tell "no handler there" from a slow one.
    ``request`` is what was sent (``request.curl()`` reproduces it).
    """

    def __init__(
        self, request: SentRequest, reason: str, *, unreachable: bool = False, timed_out: bool = False
    ) -> None:
        self.request = request
        self.reason = reason
        self.unreachable = unreachable
        self.timed_out = timed_out
        where = safe(request.url)
        if request.in_process:
            where = f"the in-process app at {safe(urllib.parse.urlsplit(request.url).path)}"
        super().__init__(
            f"no reply from {where}: {safe(reason)}\nsent: {request.summary()}\n{REPRODUCE}\n{request.curl()}"
        )

    @property
    def url(self) -> str:
        return self.request.url
