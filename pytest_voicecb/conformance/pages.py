"""Where ``Report.to_html()`` finds its page: a renderer registered from above, so the report never
imports the console (the import graph's arrows point down).

``pytest_voicecb/__init__.py`` registers the console's page (``pytest_voicecb.console.report_html``,
imported on the first call), and Python runs that file before any module of the package, so the page is
there however the report was reached. Standard library only: registering costs nothing at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_voicecb.conformance.report import Report

__all__ = ["HtmlRenderer", "register_html", "render_html"]

HtmlRenderer = Callable[..., str]
"""``render(report, *, rerun=None) -> str``: one self-contained HTML page."""

_html: list[HtmlRenderer] = []


def register_html(render: HtmlRenderer) -> None:
    """Make ``Report.to_html()`` call ``render(report, rerun=...)`` (the last one registered wins)."""
    _html[:] = [render]


def render_html(report: Report, *, rerun: str | None = None) -> str:
    """The page for ``report`` by the registered renderer; with none, an error that says what to do."""
    if not _html:
        raise RuntimeError(
            "no HTML renderer is registered: import pytest_voicecb (its __init__ registers "
            "pytest_voicecb.console.report_html), or call pytest_voicecb.console.report_html.render(report)"
        )
    return _html[0](report, rerun=rerun)
