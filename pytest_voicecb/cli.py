"""The ``voicecb`` command: check a live handler, send it one callback, or run the recording server.

Exit codes, the same for every command: 0 all good, 1 the handler broke the contract, 2 a usage or
connection error (said in one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pytest_voicecb.client import CallbackClient, Reply
    from pytest_voicecb.server import RecordedCallback

__all__ = ["UsageError", "build_parser", "main"]

DEFAULT_PATH = "/voice/callback"


class UsageError(Exception):
    """Something the person running the command can fix: a bad argument, an unreachable URL, a busy port."""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors said in one line and examples kept as written in the epilog."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _bounded(convert: Callable[[str], float], ok: Callable[[float], bool], what: str) -> Callable[[str], Any]:
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


_positive = _bounded(float, lambda v: 0 < v < float("inf"), "a positive number of seconds")
_count = _bounded(int, lambda v: v >= 1, "a whole number, at least 1")
_port = _bounded(int, lambda v: 0 <= v <= 65535, "a port number from 0 to 65535")


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"a path starts with '/', got {text!r}")
    return text


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError:
        raise argparse.ArgumentTypeError(f"the port in {text!r} is not a valid port number") from None
    return text


CHECK_EPILOG = """\
examples:
  voicecb check http://127.0.0.1:8000/voice/callback
  voicecb check https://staging.example.com/voice/cb --deadline 1 --json report.json
  voicecb check http://127.0.0.1:8000/voice/callback --strict --skip 'robust/*' --seed 42

exit status: 0 every check passed, 1 a check failed, 2 usage or connection error."""

SEND_EPILOG = """\
examples:
  voicecb send http://127.0.0.1:8000/voice/callback
  voicecb send URL --kind prompt --result 1
  voicecb send URL --kind failure --set failure_code:=8 --set failure_reason=空号
  voicecb send URL --set callid= --unset fee          (invalid: the reply must still be contract-shaped)
  voicecb send URL --case envelope/form-encoded       (a malformed case; '--case list' lists them)
  voicecb send URL --times 3                          (the same callback three times: duplicates)

--set FIELD=VALUE sets a JSON string; --set FIELD:=JSON sets raw JSON (a number, null, true ...),
as httpie does: '--set failure_code:=8' is the number 8, '--set failure_code=8' the string "8".

exit status: 0 the reply honours the contract for that input, 1 it does not, 2 usage or connection error."""

SERVE_EPILOG = """\
examples:
  voicecb serve                                   (http://127.0.0.1:8080/voice/callback)
  voicecb serve --port 0 --log callbacks.jsonl    (a free port, every callback logged)
  voicecb serve --reply status:503                (answer 503 to everything: test a sender's retries)
  voicecb serve --host 0.0.0.0 --allow-remote     (reachable from other hosts, e.g. in docker-compose)

--reply: 'contract' (default) answers {"result": 0, "errmsg": "OK"} to a valid callback and a contract
error to an invalid one; 'ok' and 'error' answer success or failure to everything; 'status:N' answers
HTTP status N. With --log, each callback is appended to FILE as one JSON line and written to disk
before the reply is sent; a line holds received_at, method, path, content_type, kind, callid, valid,
problems, body (body_encoding "hex" when it is not UTF-8) and reply_status. Ctrl-C or SIGTERM stops the
server (exit status 0)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``voicecb`` argument parser, with one sub-parser per command."""
    parser = _Parser(
        prog="voicecb",
        description="Test voice-notification callback handlers against the provider's contract.",
        epilog="examples:\n  voicecb check http://127.0.0.1:8000/voice/callback\n"
        "  voicecb send http://127.0.0.1:8000/voice/callback --kind keypress\n"
        "  voicecb serve --port 9000 --log callbacks.jsonl\n\n"
        "'voicecb COMMAND --help' describes each command.",
    )
    from pytest_voicecb import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    check = commands.add_parser(
        "check",
        help="run the conformance suite against a live handler",
        epilog=CHECK_EPILOG,
        description="Run every conformance check against the handler at URL and print what broke.",
    )
    check.add_argument("url", metavar="URL", type=_url, help="the handler's callback URL")
    check.add_argument("--deadline", type=_positive, metavar="S", help="seconds a reply may take (rule 6)")
    check.add_argument("--strict", action="store_true", help="questionable input must be rejected too")
    check.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="ID",
        help="skip checks by id or glob, e.g. 'robust/*' (repeatable)",
    )
    check.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE ('-' for stdout)")
    check.add_argument("--seed", type=int, metavar="N", help="payload seed, to reproduce a run")
    check.add_argument("--path", type=_path, metavar="P", help="path to post to, replacing the URL's path")
    check.add_argument(
        "--timeout",
        type=_positive,
        default=5.0,
        metavar="S",
        help="give up on a URL that does not answer within S seconds (default 5)",
    )
    check.set_defaults(run=_check)

    send = commands.add_parser(
        "send",
        help="deliver one callback and judge the reply",
        epilog=SEND_EPILOG,
        description="Deliver one callback (or a malformed case, or N duplicates), print what was sent, "
        "the reply and the verdict.",
    )
    send.add_argument("url", metavar="URL", type=_url, nargs="?", help="the handler's callback URL")
    send.add_argument(
        "--kind",
        default="prompt",
        metavar="K",
        help="prompt, code, keypress or failure (or the full key, e.g. voicekey_callback)",
    )
    send.add_argument("--result", metavar="R", help='call result for prompt/code: "0" answered, "1", "2"')
    send.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        dest="sets",
        help="set a field: FIELD=VALUE (a string) or FIELD:=JSON (raw JSON) (repeatable)",
    )
    send.add_argument("--unset", action="append", default=[], metavar="FIELD", help="remove a field (repeatable)")
    send.add_argument("--case", metavar="ID", help="send a case of the malformed corpus instead ('list' lists them)")
    send.add_argument("--times", type=_count, default=1, metavar="N", help="deliver the same body N times")
    send.add_argument("--strict", action="store_true", help="an invalid callback must be rejected, not accepted")
    send.add_argument("--seed", type=int, metavar="N", help="payload seed, to reproduce a callback")
    send.add_argument("--timeout", type=_positive, default=5.0, metavar="S", help="seconds to wait (default 5)")
    send.set_defaults(run=_send)

    serve = commands.add_parser(
        "serve",
        help="run the recording callback server",
        epilog=SERVE_EPILOG,
        description="Receive callbacks, print one line per callback, and optionally log them as JSON lines.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=8080, metavar="N", help="port to bind, 0 for any free one (default 8080)"
    )
    serve.add_argument(
        "--path",
        type=_path,
        default=DEFAULT_PATH,
        metavar="P",
        help=f"the callback path printed in the URL (default {DEFAULT_PATH}; any path is recorded)",
    )
    serve.add_argument("--log", metavar="FILE", help="append every callback to FILE as a JSON line")
    serve.add_argument(
        "--reply",
        default="contract",
        metavar="MODE",
        type=_reply_mode,
        help="contract (default), ok, error, or status:N",
    )
    serve.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    serve.add_argument("--quiet", action="store_true", help="do not print a line per callback")
    serve.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voicecb`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except UsageError as exc:
        print(f"voicecb {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"voicecb {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout was closed (voicecb ... | head): nothing more to say, and nothing to say it on.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug of ours: still one line, with the traceback on request
        if os.environ.get("VOICECB_DEBUG"):
            raise
        print(
            f"voicecb {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(set VOICECB_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 2
    return status


# ---- shared helpers -------------------------------------------------------------------------------


def _with_path(url: str, path: str | None) -> str:
    if path is None:
        return url
    return urlsplit(url)._replace(path=path, query="", fragment="").geturl()


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _describe_body(body: bytes, content_type: str | None) -> str:
    """A reply body for a person: JSON as it came, anything else named with its type, on one line."""
    from pytest_voicecb.assertions import preview

    kind = (content_type or "").split(";")[0].strip()
    if body and kind and "json" not in kind:
        return f"({kind}, {len(body)} bytes) {preview(body, 120)}"
    return preview(body)


# ---- check ----------------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    from pytest_voicecb.client import CallbackClient, DeliveryError
    from pytest_voicecb.conformance import run_conformance
    from pytest_voicecb.factory import PayloadFactory

    url = _with_path(args.url, args.path)
    if args.json and args.json != "-":
        _write_json(args.json, "")  # fail before the run, not after it, if the report cannot be written
    with CallbackClient(url) as client:
        probe = _deliver(client, PayloadFactory(args.seed).answered(), args.timeout, url)
    if probe.status in (404, 405) or 300 <= probe.status < 400:
        raise UsageError(
            f"{url} answered a valid callback with HTTP {probe.status} "
            f"{_describe_body(probe.body, probe.headers.get('Content-Type'))}: is this the callback URL?"
        )
    options: dict[str, Any] = {"strict": args.strict, "skip": args.skip, "seed": args.seed}
    if args.deadline is not None:
        options["deadline"] = args.deadline
    try:
        report = run_conformance(url, **options)
    except DeliveryError as exc:  # the handler went away between the probe and the suite
        raise UsageError(f"no reply from {url}: {exc.reason}") from None
    print(report, flush=True)
    if args.json:
        _write_json(args.json, report.to_json())
    return 0 if report.ok else 1


def _write_json(where: str, text: str) -> None:
    if where == "-":
        print(text)
        return
    try:
        with open(where, "w", encoding="utf-8") as f:
            f.write(text + "\n" if text else "")
    except OSError as exc:
        raise UsageError(f"cannot write the JSON report to {where}: {exc.strerror or exc}") from None


def _deliver(client: CallbackClient, what: Any, timeout: float, url: str) -> Reply:
    """One delivery; no reply at all (refused, unknown host, timeout) becomes a one-line ``UsageError``."""
    from pytest_voicecb.client import DeliveryError

    try:
        return client.post(what, timeout=timeout)
    except DeliveryError as exc:
        raise UsageError(f"no reply from {url}: {exc.reason}") from None


# ---- send -----------------------------------------------------------------------------------------


def _send(args: argparse.Namespace) -> int:
    from pytest_voicecb.factory import PayloadFactory

    factory = PayloadFactory(args.seed)
    if args.case == "list":
        for case in factory.malformed():
            print(f"{case.id:<36} {case.expect:<7} {case.why}")
        return 0
    if args.url is None:
        raise UsageError("URL is required (see 'voicecb send --help')")
    what, label = _what_to_send(args, factory)
    from pytest_voicecb.assertions import preview
    from pytest_voicecb.client import CallbackClient

    failures: list[str] = []
    expected = ""
    with CallbackClient(args.url) as client:
        for n in range(1, args.times + 1):
            reply = _deliver(client, what, args.timeout, args.url)
            if n == 1:
                print(f"sent: {label}, seed {factory.seed}")
                print(f"  {reply.request.summary()}")
                print(f"  {preview(reply.request.body, 4000)}")
            prefix = f"reply {n}/{args.times}" if args.times > 1 else "reply"
            print(
                f"{prefix}: HTTP {reply.status} in {reply.elapsed * 1000:.1f} ms: "
                f"{_describe_body(reply.body, reply.headers.get('Content-Type'))}"
            )
            expected, verdict = _verdict(reply, what, args.strict, duplicate=n > 1)
            if verdict is not None:
                failures.append(verdict)
                print(f"  FAILED: {verdict}")
                print(f"  reproduce: {reply.curl()}")
    if failures:
        counted = f" ({len(failures)} of {args.times} replies)" if args.times > 1 else ""
        print(f"verdict: FAILED{counted}: {failures[0]}")
        return 1
    print(f"verdict: ok ({expected}, and got one)")
    return 0


def _what_to_send(args: argparse.Namespace, factory: Any) -> tuple[Any, str]:
    """What to deliver, and a label saying what it is."""
    from pytest_voicecb.contract import CallbackError, kind_named, parse_callback

    if args.case is not None:
        if args.sets or args.unset or args.result is not None:
            raise UsageError("--case sends a corpus case as is; it does not combine with --set, --unset or --result")
        cases = {case.id: case for case in factory.malformed()}
        case = cases.get(args.case)
        if case is None:
            import difflib

            close = difflib.get_close_matches(args.case, list(cases), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UsageError(f"no malformed case {args.case!r}{hint} ('voicecb send --case list' lists them)")
        return case, f"malformed case {case.id!r} ({case.why}; expect {case.expect})"
    try:
        short = kind_named(args.kind, short=True)
    except ValueError:
        raise UsageError(f"unknown --kind {args.kind!r}: use prompt, code, keypress or failure") from None
    overrides: dict[str, Any] = {}
    if args.result is not None:
        if short not in ("prompt", "code"):
            raise UsageError(f"--result applies to prompt and code callbacks, not {short}")
        overrides["result"] = args.result
    for item in args.sets:
        name, value = _parse_set(item)
        overrides[name] = value
    if args.unset:
        from pytest_voicecb.factory import MISSING

        for name in args.unset:
            overrides[name] = MISSING
    payload = getattr(factory, short)(**overrides)
    try:
        parse_callback(payload)
    except CallbackError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        return payload, f"an invalid {kind_named(short)} ({problems})"
    return payload, f"a valid {kind_named(short)}"


def _parse_set(item: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` (a string) or ``FIELD:=JSON`` (raw JSON), as httpie reads them."""
    name, sep, value = item.partition("=")
    if not sep or not name or name == ":":
        raise UsageError(f"--set expects FIELD=VALUE or FIELD:=JSON, got {item!r}")
    if not name.endswith(":"):
        return name, value
    try:
        return name[:-1], json.loads(value)
    except ValueError:
        raise UsageError(f"--set {item!r}: {value!r} is not JSON (use {name[:-1]}=VALUE for a string)") from None


def _verdict(reply: Reply, sent: Any, strict: bool, *, duplicate: bool) -> tuple[str, str | None]:
    """What the contract expects of the reply to ``sent``, and why the reply breaks it (None if it does not).

    The verdict is the conformance suite's own (``conformance.judge``), so ``send`` and ``check`` agree.
    """
    from pytest_voicecb.assertions import expectation
    from pytest_voicecb.conformance import judge

    verdict = judge(reply, sent, strict=strict)
    if not verdict.problems:
        return verdict.expected, None
    what = "a duplicate delivery must be acknowledged again (rule 4): " if duplicate and verdict.expect == "ok" else ""
    expected = expectation(verdict.expect, verdict.rule)
    return verdict.expected, what + _one_line(f"{expected}; {'; '.join(verdict.problems)}", 400)


# ---- serve ----------------------------------------------------------------------------------------


def _reply_mode(text: str) -> str:
    if text in ("contract", "ok", "error"):
        return text
    if text.startswith("status:"):
        code = text.partition(":")[2]
        if code.isdigit() and 100 <= int(code) <= 599:
            return text
        raise argparse.ArgumentTypeError(f"status:N needs an HTTP status from 100 to 599, got {text!r}")
    raise argparse.ArgumentTypeError(f"expected contract, ok, error or status:N, got {text!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Log:
    """An append-only JSON-lines file; ``write`` returns once its line is on disk (written and fsynced).

    Group commit: a thread that finds its line already covered by another thread's fsync does not
    fsync again, so concurrent callbacks share one disk flush instead of queueing for one each.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot write the log {path}: {exc.strerror or exc}") from None
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0  # lines written so far
        self._synced = 0  # lines known to be on disk

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
        with self._write_lock:  # whole lines, one after another: lines never interleave
            view = memoryview(line)
            while view:
                view = view[os.write(self.fd, view) :]
            self._written += 1
            mine = self._written
        with self._sync_lock:
            if self._synced >= mine:
                return  # another thread's fsync, begun after our write, already covered it
            with self._write_lock:
                upto = self._written
            os.fsync(self.fd)
            self._synced = upto

    def close(self) -> None:
        os.close(self.fd)


def _record_of(recorded: RecordedCallback) -> dict[str, Any]:
    """A recorded callback as one JSON log record: when, what was sent, whether it is valid, the answer."""
    try:
        body: str = recorded.body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        body, encoding = recorded.body.hex(), "hex"
    fields = recorded.fields
    callid = fields.get("callid")
    return {
        "received_at": datetime.fromtimestamp(recorded.received_at, timezone.utc).isoformat(timespec="microseconds"),
        "method": recorded.method,
        "path": recorded.path + (f"?{recorded.query}" if recorded.query else ""),
        "content_type": recorded.headers.get("Content-Type"),
        "kind": recorded.kind,
        "callid": callid if isinstance(callid, str) else None,
        "valid": recorded.valid,
        "problems": [str(problem) for problem in recorded.problems],
        "body": body,
        "body_encoding": encoding,
        "reply_status": recorded.reply.status_code if recorded.reply is not None else None,
    }


def _line_of(recorded: RecordedCallback, record: dict[str, Any]) -> str:
    """The line printed per callback: time, kind, callid, result, and valid or why not."""
    from pytest_voicecb.contract import kind_named

    when = datetime.fromtimestamp(recorded.received_at).strftime("%H:%M:%S.%f")[:-3]
    kind = record["kind"]
    short = kind_named(kind, short=True) if kind else "-"
    fields = recorded.fields
    outcome = next((fields[key] for key in ("result", "failure_code", "keypress") if key in fields), "-")
    if record["valid"]:
        verdict = "valid"
    else:
        verdict = "INVALID " + _one_line(record["problems"][0] if record["problems"] else "unreadable", 160)
    return (
        f"{when}  {short:<8} {record['callid'] or '-':<36} {_one_line(str(outcome), 8):<4} {verdict}"
        f"  -> {record['reply_status'] or 'dropped'}"
    )


def _serve(args: argparse.Namespace) -> int:
    from pytest_voicecb.server import CallbackServer

    if not _is_loopback(args.host) and not args.allow_remote:
        raise UsageError(
            f"refusing to bind {args.host}, which other hosts can reach; pass --allow-remote if that is intended"
        )
    # The server logs a failed on_callback with its traceback; here the one-line message below says it.
    server_log = logging.getLogger("pytest_voicecb.server")
    server_log.addHandler(logging.NullHandler())
    server_log.propagate = False
    log = _Log(args.log) if args.log else None
    stop = threading.Event()
    lock = threading.Lock()
    received = 0

    def on_callback(recorded: RecordedCallback) -> None:
        nonlocal received
        record = _record_of(recorded)
        if log is not None:
            try:
                log.write(record)
            except OSError as exc:
                print(
                    f"voicecb serve: cannot write the log {log.path}: {exc.strerror or exc}; answered 500",
                    file=sys.stderr,
                    flush=True,
                )
                raise  # the server answers 500, so the sender knows the callback was not taken
        with lock:
            received += 1
            if not args.quiet:
                print(_line_of(recorded, record), flush=True)

    server = CallbackServer(args.host, args.port, path=args.path, on_callback=on_callback)
    _script_replies(server, args.reply)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
    except OSError as exc:
        if log is not None:
            log.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    if not _is_loopback(args.host):
        print(
            f"voicecb serve: warning: {args.host} is reachable from other hosts, and the server records "
            "whatever anyone sends it",
            file=sys.stderr,
            flush=True,
        )
    print(f"listening on {server.url}" + (f", logging to {args.log}" if log else ""), flush=True)
    try:
        while not stop.wait(0.5):
            server.clear()  # the printed lines and the log are the record; keep memory flat
    finally:
        server.stop()
        if log is not None:
            log.close()
    print(f"stopped after {received} callback{'s' if received != 1 else ''}", flush=True)
    return 0


def _script_replies(server: Any, mode: str) -> None:
    if mode == "ok":
        server.reply_with(result=0, errmsg="OK")
    elif mode == "error":
        server.reply_with(result=1, errmsg="rejected by voicecb serve --reply error")
    elif mode.startswith("status:"):
        server.reply_with(status=int(mode.partition(":")[2]))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
