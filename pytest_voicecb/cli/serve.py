"""``voicecb serve``: the recording callback server as a command, with a durable log and safe output.

Answering never waits on the terminal: each printed line goes through an ``output.Printer`` (a bounded queue
and a thread of its own), so a stdout nobody reads or a closed one (``| head -2``) costs printed lines,
counted and reported at exit, never a reply. With ``--log`` a callback is answered only once its line
is on disk (``log.LogWriter``); if it cannot be written, the sender gets a 500 and can retry.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _text
from pytest_voicecb._sites import is_loopback
from pytest_voicecb.cli import common
from pytest_voicecb.cli.common import UsageError
from pytest_voicecb.cli.output import Printer, say_goodbye
from pytest_voicecb.values import DEFAULT_PATH

if TYPE_CHECKING:
    from pytest_voicecb.cli.forward import Forwarder
    from pytest_voicecb.log import LogWriter
    from pytest_voicecb.server import CallbackServer, RecordedCallback

__all__ = ["SERVE_EPILOG", "add_serve", "serve"]


SERVE_EPILOG = """\
examples:
  voicecb serve                                   (http://127.0.0.1:8080/voice/callback)
  voicecb serve --port 0 --log callbacks.jsonl    (a free port, every callback logged)
  voicecb serve --reply status:503                (answer 503 to everything: test a sender's retries)
  voicecb serve --host 0.0.0.0 --allow-remote     (reachable from other hosts, e.g. in docker-compose)
  voicecb serve --console --open                  (watch callbacks arrive in a browser, script replies)
  voicecb serve --forward-to 127.0.0.1:8000/voice/callback   (relay to your handler, judge its replies)
  voicecb serve --tls --port 0                    (https://, the test CA's file printed for clients to trust)

--forward-to URL: each callback is relayed byte for byte to the handler at URL and the handler's reply
goes back to the sender; the line printed per callback ends with the handler's status and verdict, and
the log record holds it as "forwarded". No reply from the handler: the sender gets a 502.

--reply: 'contract' (default) answers {"result": 0, "errmsg": "OK"} to a valid callback and a contract
error to an invalid one; 'ok' and 'error' answer success or failure to everything; 'status:N' answers
HTTP status N (100 to 599).

--log FILE: each callback is appended to FILE as one JSON line, on disk before the reply is sent; a
line holds received_at, method, path, content_type, kind, callid, valid, problems, body (body_encoding
"hex" when it is not UTF-8), reply_status and truncated. When a line cannot be written (a full disk),
the sender gets HTTP 500 and the file is left as it was. FILE is created readable by its owner only (it
holds phone numbers), a symbolic link is refused unless --log-follow-symlinks, and SIGHUP reopens FILE
(after logrotate's mv).

--console: a live web console at http://HOST:PORT/_voicecb/?token=... (printed at start; --open opens it) shows every
callback as it arrives, newest first, with its verdict, body, headers, reply and a curl command, and
scripts the next replies (OK, an error, a delay, a dropped connection). Its API needs the printed token and
refuses other sites' pages (Host and Origin are checked).

Printed lines never hold up a reply: when stdout is not read fast enough (or is closed, as by
'| head'), lines are dropped and counted instead.

exit status: 0 stopped by Ctrl-C or SIGTERM, 2 usage error (a bad argument, a busy port, an unwritable
log)."""


def add_serve(commands: argparse._SubParsersAction[common.VoicecbParser]) -> None:
    """The ``serve`` sub-command."""
    serve_parser = commands.add_parser(
        "serve",
        help="run the recording callback server",
        epilog=SERVE_EPILOG,
        description="Receive callbacks, print one line per callback, and optionally log them as JSON lines.",
    )
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve_parser.add_argument(
        "--port", type=common.port, default=8080, metavar="N", help="port to bind, 0 for any free one (default 8080)"
    )
    serve_parser.add_argument(
        "--path",
        type=common.path,
        default=DEFAULT_PATH,
        metavar="P",
        help=f"the callback path printed in the URL (default {DEFAULT_PATH}; any path is recorded)",
    )
    serve_parser.add_argument("--log", metavar="FILE", help="append every callback to FILE as a JSON line")
    serve_parser.add_argument(
        "--log-follow-symlinks", action="store_true", help="allow --log FILE to be a symbolic link"
    )
    serve_parser.add_argument(
        "--reply",
        default="contract",
        metavar="MODE",
        type=common.reply_mode,
        help="contract (default), ok, error, or status:N",
    )
    serve_parser.add_argument(
        "--forward-to",
        type=common.http_url,
        metavar="URL",
        help="relay each callback to the handler at URL and answer with its reply, judged and logged",
    )
    serve_parser.add_argument(
        "--forward-timeout", type=common.positive, default=5.0, metavar="S", help="seconds per relay (5)"
    )
    serve_parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    serve_parser.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a certificate from a throw-away test CA, its file printed (needs pytest-voicecb[tls])",
    )
    serve_parser.add_argument("--quiet", action="store_true", help="do not print a line per callback")
    serve_parser.add_argument(
        "--console", action="store_true", help="serve a live web console at /_voicecb/ on the same port"
    )
    serve_parser.add_argument(
        "--open", action="store_true", help="open the live console in a web browser (implies --console)"
    )
    serve_parser.set_defaults(run=serve)


def _line_of(recorded: RecordedCallback, record: dict[str, Any]) -> str:
    """The line printed per callback: time, kind, callid, result, and valid or why not.

    Every value that came from the network is escaped (``_text.safe``): a callid holding a newline and
    an escape sequence is shown as ``\\n`` and ``\\x1b``, so it can never forge a line or move the cursor.
    """
    from pytest_voicecb.contract import kind_named

    when = datetime.fromtimestamp(recorded.received_at).strftime("%H:%M:%S.%f")[:-3]
    kind = record["kind"]
    short = kind_named(kind, short=True) if kind else "-"
    fields = recorded.fields
    outcome = next((fields[key] for key in ("result", "failure_code", "keypress") if key in fields), "-")
    if record["valid"]:
        verdict = "valid"
    else:
        verdict = "INVALID " + _text.one_line(record["problems"][0] if record["problems"] else "unreadable", 160)
    callid = _text.shorten(_text.safe(record["callid"]), 80) if record["callid"] else "-"
    result = _text.shorten(_text.safe(str(outcome)), 8)
    return f"{when}  {short:<8} {callid:<36} {result:<4} {verdict}  -> {record['reply_status'] or 'dropped'}"


def serve(args: argparse.Namespace) -> int:
    """Run ``voicecb serve`` until SIGINT or SIGTERM; returns the exit status."""
    from pytest_voicecb.server import CallbackServer

    if not is_loopback(args.host) and not args.allow_remote:
        raise UsageError(
            f"refusing to bind {args.host}, which other hosts can reach; pass --allow-remote if that is intended"
        )
    # The server logs a failed on_callback with its traceback; here the one-line message below says it.
    server_log = logging.getLogger("pytest_voicecb.server")
    server_log.addHandler(logging.NullHandler())
    server_log.propagate = False
    log = _open_log(args.log, args.log_follow_symlinks) if args.log else None
    out, errors = _printers(log)
    forward = _forwarder(args)
    if forward is not None:
        _probe_upstream(forward, errors)
    feed, console = _console(args)
    recorder = _Recorder(args.quiet, log, forward, feed, out, errors)
    mounts = {console.PREFIX: console.app} if console is not None else None
    server = CallbackServer(
        args.host, args.port, path=args.path, on_callback=recorder, mounts=mounts, answer=forward, tls=args.tls
    )
    if console is not None:
        console.app.server = server
    _script_replies(server, args.reply)
    signals = common.Signals(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    _start(server, args, log)
    _announce(server, args, log, forward, out, errors)
    if console is not None and feed is not None:
        feed.url = server.url[: -len(server.path)] if server.url.endswith(server.path) else server.url
        console.say(out, args.open)
    try:
        _serve_until_stopped(server, signals, feed, log, errors)
    finally:
        server.stop()
        if forward is not None:
            forward.close()
        if log is not None:
            log.close()
    say_goodbye("voicecb serve", f"stopped after {_text.plural(recorder.received, 'callback')}", out, errors)
    return 0


def _printers(log: LogWriter | None) -> tuple[Printer, Printer]:
    """stdout and stderr, each behind its own bounded queue: a stdout nobody reads never holds up a reply."""
    sys.stdout.flush()
    sys.stderr.flush()
    errors = Printer(sys.stderr.fileno(), "stderr")
    out = Printer(
        sys.stdout.fileno(),
        "stdout",
        on_closed=lambda: errors.say(
            "voicecb serve: warning: stdout was closed; callbacks are still answered"
            + (" and logged" if log is not None else "")
            + ", but no longer printed"
        ),
    )
    return out, errors


class _Recorder:
    """The server's ``on_callback``: each callback logged (before it is answered), fed to the console,
    counted and printed."""

    def __init__(
        self,
        quiet: bool,
        log: LogWriter | None,
        forward: Forwarder | None,
        feed: Any,
        out: Printer,
        errors: Printer,
    ) -> None:
        self.quiet, self.log, self.forward, self.feed, self.out, self.errors = quiet, log, forward, feed, out, errors
        self.received = 0
        self._lock = threading.Lock()

    def __call__(self, recorded: RecordedCallback) -> None:
        from pytest_voicecb import log as logfile

        record = logfile.record_of(recorded)
        relayed = self.forward.last() if self.forward is not None else None
        if relayed is not None:
            record["forwarded"] = relayed.to_record()
        if self.log is not None:
            try:
                self.log.write(record)
            except OSError as exc:
                self.errors.say(
                    f"voicecb serve: cannot write the log {self.log.path}: {exc.strerror or exc}; answered 500 "
                    "(the sender may retry)"
                )
                raise  # the server answers 500, so the sender knows the callback was not taken
        if self.feed is not None:
            self.feed.add(recorded, record)
        with self._lock:
            self.received += 1
        if not self.quiet:
            line = _line_of(recorded, record)
            self.out.say(line if relayed is None else f"{line} ({_text.one_line(relayed.describe(), 300)})")


def _start(server: CallbackServer, args: argparse.Namespace, log: LogWriter | None) -> None:
    """Listen; a busy port or TLS without its extra is a usage error (the log closed first)."""
    try:
        server.start()
    except (OSError, ImportError) as exc:
        if log is not None:
            log.close()
        if isinstance(exc, ImportError):
            raise UsageError(f"--tls: {exc}") from None
        # Said once: the server's own message already names the address, so take the bare reason.
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {reason}") from None


def _announce(
    server: CallbackServer,
    args: argparse.Namespace,
    log: LogWriter | None,
    forward: Forwarder | None,
    out: Printer,
    errors: Printer,
) -> None:
    """The start-up lines: where it listens, logs and forwards, the CA file to trust with --tls."""
    if not is_loopback(args.host):
        errors.say(
            f"voicecb serve: warning: {args.host} is reachable from other hosts, and the server records "
            "whatever anyone sends it"
        )
    out.say(
        f"listening on {server.url}"
        + (f", logging to {_text.safe(log.path)}" if log else "")
        + (f", forwarding to {_text.safe(forward.url)}" if forward else "")
    )
    if server.ca_path is not None:
        out.say(f"test CA (trust it, e.g. SSL_CERT_FILE / NODE_EXTRA_CA_CERTS / --cacert): {server.ca_path}")


def _serve_until_stopped(
    server: CallbackServer, signals: common.Signals, feed: Any, log: LogWriter | None, errors: Printer
) -> None:
    """Every half second: forget the records (the lines and the log keep them), feed the console, and
    act on signals (SIGHUP reopens the log); returns at SIGINT or SIGTERM."""
    while True:
        signals.wait(0.5)
        server.clear()  # the printed lines and the log are the record; keep memory flat
        if feed is not None:
            feed.flush()  # off the callback path: the console's rows are built here, in one batch
        stop = False
        for number in signals.take():
            if number == signal.SIGHUP:
                _reopen(log, errors)
            else:
                stop = True
        if stop:
            return


def _probe_upstream(forward: Forwarder, errors: Printer) -> None:
    """Before serving, one empty POST to the handler (a body it refuses without acting on it): nothing
    listening is said (the handler may start later; until then callbacks get a 502), and a 404, 405 or
    redirect, no handler at that URL, is a usage error said as ``check`` says it."""
    from pytest_voicecb.client import CallbackClient, DeliveryError

    shown = _text.safe(forward.url)
    try:
        with CallbackClient(forward.url, timeout=forward.timeout) as client:
            reply = client.post(b"", content_type="application/json")
    except DeliveryError as exc:
        errors.say(
            f"voicecb serve: warning: nothing answers at {shown} ({_text.one_line(exc.reason)}); "
            "callbacks get a 502 until the handler listens there"
        )
        return
    hint = "--forward-to takes the handler's callback URL, path included"
    wrong = common.wrong_callback_url(shown, reply.status, reply.body, reply.headers.get("Content-Type"), hint)
    if wrong is not None:
        raise UsageError(wrong)


def _forwarder(args: argparse.Namespace) -> Forwarder | None:
    """The relay of ``--forward-to``, or None; it answers every callback, so no ``--reply`` script."""
    from pytest_voicecb.cli.forward import Forwarder
    from pytest_voicecb.client import TargetError

    if args.forward_to is None:
        return None
    if args.reply != "contract":
        raise UsageError("--forward-to answers with the handler's reply; it does not combine with --reply")
    try:
        return Forwarder(args.forward_to, timeout=args.forward_timeout)
    except (TargetError, ValueError) as exc:
        raise UsageError(f"--forward-to {_text.safe(args.forward_to)}: {exc}") from None


def _open_log(where: str, follow_symlinks: bool) -> LogWriter:
    from pytest_voicecb.log import LogWriter

    try:
        return LogWriter(where, follow_symlinks=follow_symlinks)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if "symbolic link" in reason:
            reason += " (pass --log-follow-symlinks if that is intended)"
        raise UsageError(f"cannot write the log {_text.safe(where)}: {reason}") from None


def _reopen(log: LogWriter | None, errors: Printer) -> None:
    """SIGHUP: open the log again (logrotate moved it away); without a log, nothing to do."""
    if log is None:
        return
    try:
        log.reopen()
    except OSError as exc:
        errors.say(
            f"voicecb serve: cannot reopen the log {_text.safe(log.path)}: {exc.strerror or exc}; "
            "still writing to the file opened before"
        )


def _script_replies(server: CallbackServer, mode: str) -> None:
    """Script the server's answers for ``--reply MODE`` (``contract`` is the server's default)."""
    if mode == "ok":
        server.reply_with(result=0, errmsg="OK")
    elif mode == "error":
        server.reply_with(result=1, errmsg="rejected by voicecb serve --reply error")
    elif mode.startswith("status:"):
        server.reply_with(status=int(mode.partition(":")[2]))


class _Console:
    """The live console's parts for ``serve``: the WSGI app to mount and how to announce it."""

    def __init__(self, app: Any, prefix: str) -> None:
        self.app = app
        self.PREFIX = prefix

    def say(self, out: Printer, open_browser: bool) -> None:
        """The console's URL (with its token), after the listening line."""
        url = self.app.url()
        out.say(f"live console: {url}")
        if open_browser:
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(url,), name="voicecb-open", daemon=True).start()


def _console(args: argparse.Namespace) -> tuple[Any, _Console | None]:
    """The console's feed and app, with ``--console`` (or ``--open``)."""
    if not (args.console or args.open):
        return None, None
    from pytest_voicecb.console.app import PREFIX, ConsoleApp
    from pytest_voicecb.console.feed import Feed

    feed = Feed()
    return feed, _Console(ConsoleApp(feed, hosts=[f"{args.host}:{args.port}"]), PREFIX)
