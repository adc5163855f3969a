"""What every ``voicecb`` command shares: the usage error, the argument parser class and argument types.

A module of its own so that every command's module (``voicecb``, ``serve``, ``provider``, ``replay``)
imports it rather than another command's module (``voicecb`` only adds the others' parsers).
"""

from __future__ import annotations

import argparse
import difflib
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pytest_voicecb import _arguments, _text

__all__ = [
    "UsageError",
    "VoicecbParser",
    "add_trust_options",
    "bounded",
    "count",
    "describe_body",
    "http_url",
    "path",
    "port",
    "positive",
    "reply_mode",
    "whole",
    "wrong_callback_url",
]


class UsageError(Exception):
    """Something the person running the command can fix: a bad argument, an unreachable URL, a busy port."""


class VoicecbParser(argparse.ArgumentParser):
    """argparse, with errors said in one line and examples kept as written in the epilog."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.commands: Mapping[str, argparse.ArgumentParser] = {}
        """The sub-commands' parsers by name (set by whoever adds them), for errors said by the right one."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """As argparse's, but an unknown option is refused by its sub-command (``voicecb check: error:
        unrecognized arguments: --jsn; did you mean --json? (see 'voicecb check --help')``), not the top."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self.commands.get(str(getattr(parsed, "command", "")), self)
            known = [option for action in parser._actions for option in action.option_strings]
            options = [extra.partition("=")[0] for extra in extras if extra.startswith("-")]
            guesses = [difflib.get_close_matches(option, known, n=1) for option in options]
            hint = "; ".join(f"did you mean {guess[0]}?" for guess in guesses if guess)
            parser.error(f"unrecognized arguments: {' '.join(extras)}" + (f"; {hint}" if hint else ""))
        return parsed


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
        if code.isdigit() and _arguments.STATUS_MIN <= int(code) <= _arguments.STATUS_MAX:
            return text
        raise argparse.ArgumentTypeError(
            f"status:N needs an HTTP status from {_arguments.STATUS_MIN} to {_arguments.STATUS_MAX}, got {text!r}"
        )
    raise argparse.ArgumentTypeError(f"expected contract, ok, error or status:N, got {text!r}")


def describe_body(body: bytes, content_type: str | None) -> str:
    """A reply body for a person: JSON as it came, anything else named with its type, on one line."""
    media_type = _text.safe(_text.media_type(content_type))
    if body and media_type and "json" not in media_type:
        return f"({media_type}, {len(body)} bytes) {_text.preview(body, 120)}"
    return _text.preview(body)


def wrong_callback_url(shown: str, status: int, body: bytes, content_type: str | None, hint: str) -> str | None:
    """What ``check``, ``replay`` and ``serve --forward-to`` say (and exit 2 on) when ``shown`` answered a
    POST with 404, 405 or a redirect: no handler is there. None for any other status."""
    if status not in (404, 405) and not 300 <= status < 400:
        return None
    return f"{shown} answered HTTP {status} {describe_body(body, content_type)}: is this the callback URL? ({hint})"


class Signals:
    """The signals a command's main thread waits for, recorded without taking a lock.

    A handler that sets a ``threading.Event`` can deadlock: it runs in the main thread, and when it
    interrupts that thread inside the same Event's ``wait()``, it waits for a (non-reentrant) lock its
    own thread holds. Here the handler only appends to a list, and ``wait`` sleeps in short steps.
    """

    def __init__(self, *numbers: int) -> None:
        self.received: list[int] = []
        for number in numbers:
            signal.signal(number, self._on_signal)

    def _on_signal(self, number: int, frame: object) -> None:
        self.received.append(number)

    def wait(self, timeout: float) -> None:
        """Return when a signal has arrived (within 0.05 s), or after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while not self.received:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def take(self) -> list[int]:
        """The signals received since the last call, oldest first."""
        taken = []
        while self.received:
            taken.append(self.received.pop(0))
        return taken


def add_trust_options(parser: argparse.ArgumentParser) -> None:
    """``--cacert FILE`` and ``--insecure``, for the commands that post to a handler's https:// URL."""
    parser.add_argument(
        "--cacert",
        metavar="FILE",
        help="for an https:// URL: trust the CA in FILE (PEM), e.g. the CA file voicecb serve --tls prints",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="for an https:// URL: do not verify the server's certificate at all (said as a warning)",
    )


def trust_options(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """``CallbackClient``'s ``cacert`` and ``insecure`` from the options; ``--insecure`` is warned about."""
    if args.insecure:
        print(
            f"voicecb {command}: warning: --insecure: the server's TLS certificate is not verified; "
            "anyone in between can read and change the callbacks (--cacert FILE trusts a private CA instead)",
            file=sys.stderr,
            flush=True,
        )
    return {"cacert": args.cacert, "insecure": args.insecure}
