"""pytest-voicecb: test voice-notification callback handlers against the provider's contract.

The public names are re-exported here lazily, so that importing the package (which pytest does for
every run of every project that installs the plugin) loads neither pydantic nor werkzeug. It also hands
``Report.to_html()`` the console's page (``conformance.pages``): the surfaces wire the layers together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_voicecb import _lazy
from pytest_voicecb.conformance import pages

if TYPE_CHECKING:  # explicit re-exports, so `from pytest_voicecb import X` type-checks under --strict
    from pytest_voicecb.assertions import assert_reply_contract as assert_reply_contract
    from pytest_voicecb.assertions import assert_reply_error as assert_reply_error
    from pytest_voicecb.assertions import assert_reply_ok as assert_reply_ok
    from pytest_voicecb.client import CallbackClient as CallbackClient
    from pytest_voicecb.client import DeliveryError as DeliveryError
    from pytest_voicecb.client import Reply as Reply
    from pytest_voicecb.client import TargetError as TargetError
    from pytest_voicecb.conformance import Cause as Cause
    from pytest_voicecb.conformance import CheckResult as CheckResult
    from pytest_voicecb.conformance import Report as Report
    from pytest_voicecb.conformance import run_conformance as run_conformance
    from pytest_voicecb.contract import KINDS as KINDS
    from pytest_voicecb.contract import CallbackError as CallbackError
    from pytest_voicecb.contract import ReplyContractError as ReplyContractError
    from pytest_voicecb.contract import parse_callback as parse_callback
    from pytest_voicecb.contract import parse_reply as parse_reply
    from pytest_voicecb.factory import PayloadFactory as PayloadFactory
    from pytest_voicecb.provider import ManualClock as ManualClock
    from pytest_voicecb.provider import Provider as Provider
    from pytest_voicecb.provider import RetryPolicy as RetryPolicy
    from pytest_voicecb.server import CallbackServer as CallbackServer
    from pytest_voicecb.server import RecordedCallback as RecordedCallback
    from pytest_voicecb.values import MISSING as MISSING
    from pytest_voicecb.values import Case as Case
    from pytest_voicecb.values import Variant as Variant

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "KINDS": "contract",
    "CallbackError": "contract",
    "ReplyContractError": "contract",
    "parse_callback": "contract",
    "parse_reply": "contract",
    "MISSING": "values",
    "PayloadFactory": "factory",
    "Variant": "values",
    "Case": "values",
    "CallbackServer": "server",
    "RecordedCallback": "server",
    "CallbackClient": "client",
    "Reply": "client",
    "DeliveryError": "client",
    "TargetError": "client",
    "assert_reply_ok": "assertions",
    "assert_reply_error": "assertions",
    "assert_reply_contract": "assertions",
    "run_conformance": "conformance",
    "Report": "conformance",
    "CheckResult": "conformance",
    "Cause": "conformance",
    "Provider": "provider",
    "RetryPolicy": "provider",
    "ManualClock": "provider",
}

__all__ = ["__version__", *_EXPORTS]


def _render_html(report: Report, *, rerun: str | None = None) -> str:
    """``Report.to_html()``: the console renders the page, imported on the first call. Registered here, at
    the top, because Python runs this file before any module of the package: the page is there however the
    report was reached, and the report never imports the console."""
    from pytest_voicecb.console.report_html import render

    return render(report, rerun=rerun)


pages.register_html(_render_html)


__getattr__, __dir__ = _lazy.exports("pytest_voicecb", _EXPORTS, also=["__version__"])
