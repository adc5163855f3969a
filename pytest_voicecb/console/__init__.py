"""The pages to look at: the self-contained HTML conformance report (``report_html``) and the live console
that ``voicecb serve`` mounts at ``/_voicecb/`` (``app``), a small WSGI app whose page polls a JSON endpoint.

Static assets (CSS and JS) are package data under ``static/``, read once and inlined, so every page and
every report works with no network.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["asset"]

_CACHE: dict[str, str] = {}


def asset(name: str) -> str:
    """The text of ``static/NAME`` (package data), read once."""
    text = _CACHE.get(name)
    if text is None:
        text = _CACHE[name] = resources.files(__package__).joinpath("static").joinpath(name).read_text(encoding="utf-8")
    return text
