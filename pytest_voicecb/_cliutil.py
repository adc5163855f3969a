"""What every ``voicecb`` command shares: the usage error, the argument parser class and argument types.

A module of its own so that ``cli.py`` (check, send) and ``_serve.py`` (serve) both import it and never
each other.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pytest_voicecb import _checks

__all__ = [
    "UsageError",
    "VoicecbParser",
    "bounded",
    "count",
    "http_url",
    "is_loopback",
    "path",
    "port",
    "positive",
    "reply_mode",
    "whole",
]


class UsageError(Exception):
    """Something the person running the command can fix: a bad argument, an unreachable URL, a busy port."""


class VoicecbParser(argparse.ArgumentParser):
    """argparse, with errors said in one line and examples kept as written in the epilog."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def bounded(convert: Callable[[str], float], ok: Callable[[float], bool], what: str) -> Callable[[str], Any]:
    """An argparse ``type`` converting with ``convert`` and accepting only values where ``ok`` holds."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive = bounded(float, lambda v: 0 < v < float("inf"), "a positive number of seconds")
count = bounded(int, lambda v: v >= 1, "a whole number, at least 1")
whole = bounded(int, lambda v: v >= 0, "a whole number, 0 or more")
port = bounded(int, lambda v: 0 <= v <= 65535, "a port number from 0 to 65535")


def path(text: str) -> str:
    """A URL path: it starts with ``/``."""
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"a path starts with '/', got {text!r}")
    return text


def http_url(text: str) -> str:
    """An http(s) URL; ``host:port/path`` without a scheme is taken as ``http://host:port/path``."""
    if "://" not in text and not text.startswith("/"):
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError:
        raise argparse.ArgumentTypeError(f"the port in {text!r} is not a valid port number") from None
    return text


def reply_mode(text: str) -> str:
    """``contract``, ``ok``, ``error`` or ``status:N`` (N an HTTP status the server can script)."""
    if text in ("contract", "ok", "error"):
        return text
    if text.startswith("status:"):
        code = text.partition(":")[2]
        if code.isdigit() and _checks.STATUS_MIN <= int(code) <= _checks.STATUS_MAX:
            return text
        raise argparse.ArgumentTypeError(
            f"status:N needs an HTTP status from {_checks.STATUS_MIN} to {_checks.STATUS_MAX}, got {text!r}"
        )
    raise argparse.ArgumentTypeError(f"expected contract, ok, error or status:N, got {text!r}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``serve`` and ``provider`` refuse anything
    else without ``--allow-remote``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
