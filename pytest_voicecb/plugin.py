"""The pytest plugin: options, hooks and fixtures, wired to the library's plain objects.

pytest imports this module in every run of every project that installs pytest-voicecb, used or not,
so it imports nothing heavy at module level: werkzeug, pydantic and faker are loaded by the first
fixture that needs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    pass


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voicecb", "voice-notification callbacks (pytest-voicecb)")
    _add_payload_options(parser, group)
    _add_server_options(parser, group)
    _add_client_options(parser, group)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "voicecb(allow_invalid=False): options for pytest-voicecb's fixtures in this test; "
        "allow_invalid=True lets voicecb_server receive invalid callbacks without failing the test.",
    )


# ---- payloads and seeding (issue 2) ---------------------------------------------------------------


def _add_payload_options(parser: pytest.Parser, group: Any) -> None:
    pass


# ---- the recording server (issue 3) ---------------------------------------------------------------


def _add_server_options(parser: pytest.Parser, group: Any) -> None:
    pass


# ---- client, assertions and conformance (issue 4) -------------------------------------------------


def _add_client_options(parser: pytest.Parser, group: Any) -> None:
    pass
