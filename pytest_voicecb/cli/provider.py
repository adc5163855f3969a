"""``voicecb provider``: the simulator standalone, for services written in any language.

It prints the settings to configure and the run's seed, then one line per send and per delivery attempt
with its verdict; ``--log FILE`` appends each as a JSON line through ``pytest_voicecb.log`` (0600, no
symlinks). Both go through ``output``'s bounded queues, so neither a closed stdout nor a full disk ever
reaches a send or a delivery. Time is real, ``--scale`` times faster. ``add_parser(subparsers)`` adds the command to
``voicecb``'s parser and ``run(args)`` runs it; the module lives outside the ``provider`` package so that
``voicecb --help`` does not load the simulator.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _text
from pytest_voicecb._sites import is_loopback
from pytest_voicecb._text import preview, safe
from pytest_voicecb.cli import common
from pytest_voicecb.cli.output import LogOutlet, Printer, say_goodbye
from pytest_voicecb.log import LogWriter

if TYPE_CHECKING:
    from pytest_voicecb.provider import Provider
    from pytest_voicecb.provider.models import Attempt, Delivery, Send

__all__ = ["EPILOG", "add_parser", "run"]

EPILOG = """\
examples:
  voicecb provider --callback-url http://127.0.0.1:8000/voice/callback
  voicecb provider --callback-url http://127.0.0.1:8000/voice/callback --port 9100 --scale 60 --log calls.jsonl

Point the official SDK at the printed endpoint: HttpProfile(protocol="http", endpoint=ENDPOINT); the
legacy API is at the printed legacy URL. With --tls keep the SDK's default https and trust the printed
ca_path: HttpProfile(endpoint=ENDPOINT, certification=CA_PATH) in Python, NODE_EXTRA_CA_CERTS=CA_PATH for
Node.js (the proxy mode needs plain http: without --tls). Numbers +8613900000001 (no answer), +8613900000002 (call
error), +8613900000003 (presses 1), +86139000001NN (failure code NN), +8613900000201 (rate limited),
+8613900000202 (no balance) choose an outcome; see pytest_voicecb.provider for the whole table.
The seed is printed at start (random unless --seed): --seed N replays a run's callids. Printed lines and
--log records never hold up a send or a delivery: what cannot be written is dropped and counted at exit.
The control API is at /voicecb-api/ (state, reset, advance, run-until-idle, script, redeliver, decide;
only for requests naming this address in Host); --console serves a page
at /voicecb-api/console?token=... (printed) showing each call and its deliveries, with buttons that script
the next calls' outcomes and redeliver a callback. With --hold (or the number +8613900000007) a call rings until a
button on its card (answer, no answer, call error, fail with a code, press keys, hang up) decides it.
"""


def _seconds_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = [-1.0]
    if not values or not all(0 <= v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"expected seconds separated by commas (e.g. 10,60), got {text!r}")
    return values


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``provider`` to ``voicecb``'s subcommands; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "provider",
        help="run the provider simulator: send APIs that call back",
        description="Serve the voice send APIs locally and deliver each call's callbacks to --callback-url.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    return parser


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--callback-url", required=True, metavar="URL", help="where callbacks are delivered")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=common.port, default=0, metavar="N", help="port to bind (default: any free)")
    parser.add_argument(
        "--seed", default=None, help="seed for callids and callback fields (default: random, printed at start)"
    )
    parser.add_argument(
        "--keep",
        type=common.bounded(int, lambda v: v >= 1, "a whole number, 1 or more"),
        default=10_000,
        metavar="N",
        help="calls kept for the control API and the console, the latest ones (10000; --log has them all)",
    )
    parser.add_argument("--scale", type=common.positive, default=1.0, help="simulated seconds per second (1)")
    parser.add_argument("--retries", type=common.whole, default=2, metavar="N", help="retries of a failed delivery")
    parser.add_argument(
        "--backoff", type=_seconds_list, default=[10.0, 60.0], metavar="S,S", help="seconds before each retry (10,60)"
    )
    parser.add_argument("--timeout", type=common.positive, default=5.0, metavar="S", help="seconds per delivery (5)")
    parser.add_argument("--duplicates", type=common.whole, default=0, metavar="N", help="extra copies of each status")
    parser.add_argument("--failure-first", action="store_true", help="send a failure callback before the status")
    parser.add_argument("--log", metavar="FILE", help="append every send and delivery attempt to FILE (JSON lines)")
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    parser.add_argument("--quiet", action="store_true", help="print only the settings")
    parser.add_argument(
        "--console", action="store_true", help="serve a web console at /voicecb-api/console: calls, outcomes, redeliver"
    )
    parser.add_argument("--open", action="store_true", help="open the console in a web browser (implies --console)")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve the APIs over HTTPS (the SDKs' default protocol) with a certificate from a throw-away "
        "test CA; its file is printed as ca_path (needs pytest-voicecb[tls])",
    )
    parser.add_argument(
        "--cacert",
        metavar="FILE",
        help="deliver to an https:// --callback-url trusting the CA in FILE (PEM), e.g. voicecb serve --tls's",
    )
    parser.add_argument(
        "--hold",
        action="store_true",
        help="hold every call until decided by hand (the console's buttons, POST /voicecb-api/decide)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; 2 for a usage problem (printed), else 0."""
    problem = _check_arguments(args)
    if problem:
        return _fail(problem)
    try:
        log = LogWriter(args.log) if args.log else None
    except OSError as exc:
        return _fail(f"cannot write the log {args.log}: {exc.strerror or exc}")
    out, errors, records = _outlets(log)
    provider, console = _build(args, _Reporter(out, records, args.quiet))
    signals = common.Signals(signal.SIGINT, signal.SIGTERM)
    try:
        provider.start()
    except (OSError, ImportError) as exc:
        if log is not None:
            log.close()
        if isinstance(exc, ImportError):
            return _fail(f"--tls: {exc}")
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    _announce(provider, args, console, out)
    try:
        while not signals.received:
            signals.wait(3600)
    finally:
        provider.stop()
    counts = provider.backend.counts
    line = f"stopped after {_text.plural(counts['sends'], 'send')} and {_text.plural(counts['calls'], 'call')}"
    say_goodbye("voicecb provider", line, out, errors, records)
    if log is not None:
        log.close()
    return 0


def _fail(message: str) -> int:
    print(f"voicecb provider: {message}", file=sys.stderr, flush=True)
    return 2


def _check_arguments(args: argparse.Namespace) -> str:
    """What is wrong with the options (empty when nothing); normalises ``--callback-url``."""
    from pytest_voicecb._tls import client_context
    from pytest_voicecb.client import TargetError, resolve_target

    if not is_loopback(args.host) and not args.allow_remote:
        return f"refusing to bind {args.host}, which other hosts can reach; pass --allow-remote if intended"
    try:
        args.callback_url = common.http_url(args.callback_url)  # host:port/path as the other commands take it
        resolve_target(args.callback_url)
    except (argparse.ArgumentTypeError, TargetError, TypeError) as exc:
        return f"bad --callback-url {args.callback_url!r}: {exc}"
    if args.cacert is not None:
        try:
            client_context(args.cacert, insecure=False)
        except ValueError as exc:
            return f"--cacert: {exc}"
    return ""


class _Reporter:
    """The provider's ``on_send`` and ``on_attempt``: a line printed and a record logged for each, queued
    and never waited for, so a closed stdout or a full disk never reaches a send or a delivery."""

    def __init__(self, out: Printer, records: LogOutlet | None, quiet: bool) -> None:
        self.out, self.records, self.quiet = out, records, quiet

    def emit(self, line: str, record: dict[str, Any]) -> None:
        if self.records is not None:
            self.records.put(record)
        if not self.quiet:
            self.out.say(line)

    def on_send(self, send: Send) -> None:
        from pytest_voicecb.provider.control import send_data

        self.emit(f"send    {safe(send.summary())}", {"event": "send", **send_data(send)})

    def on_attempt(self, delivery: Delivery, attempt: Attempt) -> None:
        from pytest_voicecb.contract import kind_named
        from pytest_voicecb.provider.control import attempt_data

        problems = "; ".join(attempt.verdict.problems) if attempt.verdict and attempt.verdict.problems else ""
        outcome = "acknowledged" if attempt.acknowledged else f"FAILED ({problems or attempt.error})"
        reply = f"HTTP {attempt.reply.status} {preview(attempt.reply.body, 80)}" if attempt.reply else "no reply"
        kind = kind_named(delivery.kind, short=True)
        line = f"deliver #{delivery.seq} {kind} callid {delivery.callid} attempt {attempt.number}: {outcome}"
        record = {"event": "delivery", "seq": delivery.seq, "kind": delivery.kind, "callid": delivery.callid}
        record.update(payload=delivery.payload, state=delivery.state, **attempt_data(attempt))
        self.emit(f"{line}, {safe(reply)}", record)


def _build(args: argparse.Namespace, reporter: _Reporter) -> tuple[Provider, Any]:
    """The simulator the options describe (not started), and its console when asked for."""
    from pytest_voicecb.provider import Provider, RetryPolicy, SystemClock

    if args.seed is None:
        args.seed = str(secrets.randbelow(10**9))
    provider = Provider(
        args.callback_url,
        seed=args.seed,
        keep=args.keep,
        clock=SystemClock(args.scale),
        retry=RetryPolicy(args.retries, args.backoff, timeout=args.timeout),
        duplicates=args.duplicates,
        failure_first=args.failure_first,
        host=args.host,
        port=args.port,
        on_send=reporter.on_send,
        on_attempt=reporter.on_attempt,
        tls=args.tls,
        cacert=args.cacert,
    )
    console = None
    if args.console or args.open:
        from pytest_voicecb.console.provider_page import ConsoleControlApi

        console = provider.control = ConsoleControlApi(provider)  # the control API plus its page
    if args.hold:
        provider.on().hold()  # any-number rules come after the console's per-number scripts
    return provider, console


def _announce(provider: Provider, args: argparse.Namespace, console: Any, out: Printer) -> None:
    """The start-up lines: the address (and the proxy hint), the seed, the settings, the console."""
    from pytest_voicecb.provider import proxy

    hint = f" {proxy.TLS_STARTUP_HINT if args.tls else proxy.STARTUP_HINT}"
    out.say(
        f"provider listening on {provider.url}{hint}, delivering to {args.callback_url} "
        f"(seed {args.seed}: --seed {args.seed} replays)"
    )
    for name, value in provider.settings().items():
        out.say(f"  {name} = {value}")
    if console is not None:
        out.say(f"console: {console.url()}")
        if args.open:
            import webbrowser

            threading.Thread(target=webbrowser.open, args=(console.url(),), daemon=True).start()


def _outlets(log: LogWriter | None) -> tuple[Printer, Printer, LogOutlet | None]:
    """stdout, stderr and the log, each behind its own bounded queue (as ``voicecb serve`` prints)."""
    sys.stdout.flush()
    sys.stderr.flush()
    errors = Printer(sys.stderr.fileno(), "stderr")
    warning = "voicecb provider: warning: stdout was closed; sends are still answered and callbacks delivered"
    out = Printer(sys.stdout.fileno(), "stdout", on_closed=lambda: errors.say(warning + (" and logged" if log else "")))
    return out, errors, LogOutlet(log, errors, "voicecb provider") if log is not None else None
