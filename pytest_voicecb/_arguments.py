"""Argument validation shared by every public entry point, with one wording for each kind of value.

``bool`` is refused wherever a number is expected (``True`` is an ``int`` in Python, never a timeout).
Each check returns the value in its canonical type, so ``__init__`` reads
``self.timeout = _arguments.seconds("timeout", timeout)``.
"""

from __future__ import annotations

import math

__all__ = ["STATUS_MAX", "STATUS_MIN", "optional_seconds", "seconds", "status", "whole"]

STATUS_MIN = 100
STATUS_MAX = 599
"""The HTTP status codes pytest-voicecb sends or accepts in a script (RFC 9110 defines 1xx to 5xx)."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seconds(name: str, value: object, *, allow_zero: bool = False, maximum: float | None = None) -> float:
    """A finite number of seconds, positive (or ``>= 0`` with ``allow_zero``), at most ``maximum`` when
    given; ``ValueError`` otherwise."""
    try:
        ok = _is_number(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)  # type: ignore[arg-type,operator]
    except OverflowError:  # an int beyond any float (10**400): no number of seconds
        ok = False
    if ok and maximum is not None:
        ok = value <= maximum  # type: ignore[operator]
    if not ok:
        what = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
        bound = f" up to {maximum:g}" if maximum is not None else ""
        raise ValueError(f"{name} must be {what}{bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def optional_seconds(name: str, value: object) -> float | None:
    """``seconds``, or None (no bound)."""
    if value is None:
        return None
    try:
        return seconds(name, value)
    except ValueError:
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}") from None


def whole(name: str, value: object, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An ``int`` (not a bool) from ``minimum`` to ``maximum``; ``ValueError`` otherwise."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= minimum
        and (maximum is None or value <= maximum)
    ):
        return value
    bounds = f"from {minimum:,} to {maximum:,}" if maximum is not None else f"at least {minimum:,}"
    raise ValueError(f"{name} must be a whole number {bounds}, got {value!r}")


def status(name: str, value: object) -> int:
    """An HTTP status code from 100 to 599."""
    return whole(name, value, minimum=STATUS_MIN, maximum=STATUS_MAX)
