"""``voicecb replay LOG URL``: redeliver the callbacks of a recorded log to a handler, and judge each reply.

The log is the JSON-lines format of ``pytest_voicecb.log`` (written by ``voicecb serve --log``): after a
production incident, record what the provider sent, fix the handler, and replay the same bytes at it.
Each record is sent as it was received (its body bytes and content type); each reply gets the verdict
``voicecb send`` would give (``verdict.judge``). Exit 0 when nothing failed, 1 when a reply broke the
contract, 2 for a usage or connection problem.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _text
from pytest_voicecb.cli import common
from pytest_voicecb.cli.common import UsageError

if TYPE_CHECKING:
    from pytest_voicecb.client import CallbackClient, Reply
    from pytest_voicecb.conformance.verdict import Verdict

__all__ = ["EPILOG", "add_parser", "run"]

EPILOG = """\
examples:
  voicecb replay callbacks.jsonl http://127.0.0.1:8000/voice/callback
  voicecb replay callbacks.jsonl 127.0.0.1:8000/voice/callback --kind failure --callid 0bd403fe-ffd6-...
  voicecb replay callbacks.jsonl http://127.0.0.1:8000 --keep-paths --only-valid

Each record's body is sent as it was received, with its content type, to URL (or, with --keep-paths, to the
path it was received on). Lines of the log that are not records (a line cut short by a crash) and records
that cannot be sent (a bad hex body, a header HTTP cannot carry) are skipped and counted.
exit status: 0 no reply broke the contract, 1 one did, 2 usage or connection error."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``replay`` to ``voicecb``'s subcommands; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="redeliver a recorded log (serve --log) to a handler and judge each reply",
        description="Redeliver every callback of a JSON-lines log (voicecb serve --log) to URL, judging each reply.",
        epilog=EPILOG,
    )
    parser.add_argument("log", metavar="LOG", help="a JSON-lines log written by voicecb serve --log")
    parser.add_argument("url", metavar="URL", type=common.http_url, help="the handler's callback URL")
    parser.add_argument("--kind", action="append", default=[], metavar="K", help="only this kind (repeatable)")
    parser.add_argument("--callid", action="append", default=[], metavar="ID", help="only this callid (repeatable)")
    parser.add_argument("--only-valid", action="store_true", help="skip records that were not valid callbacks")
    parser.add_argument("--keep-paths", action="store_true", help="send each record to the path it was received on")
    parser.add_argument("--strict", action="store_true", help="warnings fail (as in voicecb check --strict)")
    parser.add_argument("--timeout", type=common.positive, default=5.0, metavar="S", help="seconds per delivery (5)")
    parser.add_argument("--show-secrets", action="store_true", help="print credentials in the URL as they are")
    common.add_trust_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Replay the log; 0 nothing failed, 1 a reply broke the contract (UsageError for the rest)."""
    from pytest_voicecb.client import CallbackClient, DeliveryError, TargetError
    from pytest_voicecb.conformance.verdict import judge
    from pytest_voicecb.contract import kind_named
    from pytest_voicecb.log import body_of, read_records

    try:
        kinds = {kind_named(kind) for kind in args.kind}
    except ValueError as exc:
        raise UsageError(f"--kind: {exc}") from None
    records = read_records(args.log)
    read = sent = failed = warned = undeliverable = 0
    try:
        client = CallbackClient(
            args.url, timeout=args.timeout, redact=not args.show_secrets, **common.trust_options(args, "replay")
        )
    except (TargetError, ValueError) as exc:
        raise UsageError(f"bad URL {args.url!r}: {exc}") from None
    try:
        with client:
            for number, record in enumerate(records, 1):
                read = number
                try:
                    if not _wanted(record, kinds, set(args.callid), args.only_valid):
                        continue
                    path = str(record.get("path") or "") if args.keep_paths else None
                    reply = _post(client, body_of(record), record.get("content_type"), path)
                except (ValueError, TypeError) as exc:  # a record we cannot send: skipped and counted
                    undeliverable += 1
                    print(
                        f"#{number} {_label(record)}: skipped, cannot be sent: {_text.one_line(str(exc))}", flush=True
                    )
                    continue
                except DeliveryError as exc:
                    if sent == 0 and exc.unreachable:
                        raise UsageError(f"no reply from {args.url}: {exc.reason}") from None
                    failed += 1
                    print(f"#{number} {_label(record)}: FAILED, no reply: {_text.one_line(exc.reason)}", flush=True)
                    continue
                if sent == 0:
                    _check_url(reply, args.url)
                sent += 1
                verdict = judge(reply, reply.request.body, strict=args.strict)
                failed += verdict.outcome == "failed"
                warned += verdict.outcome == "warned"
                print(f"#{number} {_label(record)} -> {_describe(reply, verdict)}", flush=True)
    except OSError as exc:
        raise UsageError(f"cannot read the log {args.log}: {exc.strerror or exc}") from None
    skipped = f", {_text.plural(records.skipped, 'unreadable line')} skipped" if records.skipped else ""
    if read == 0:
        raise UsageError(f"no records in {args.log}{skipped}: is it a log written by voicecb serve --log?")
    if undeliverable:
        skipped += f", {_text.plural(undeliverable, 'record')} that cannot be sent skipped"
    print(f"replayed {_text.plural(sent, 'callback')}: {failed} failed, {warned} warned{skipped}", flush=True)
    return 1 if failed else 0


def _check_url(reply: Reply, url: str) -> None:
    """The first reply: a 404, 405 or redirect means no handler at URL (exit 2, as ``check`` says it)."""
    hint = "give the handler's callback URL, or --keep-paths to send each record to its own path"
    wrong = common.wrong_callback_url(url, reply.status, reply.body, reply.headers.get("Content-Type"), hint)
    if wrong is not None:
        raise UsageError(wrong)


def _wanted(record: dict[str, Any], kinds: set[str], callids: set[str], only_valid: bool) -> bool:
    if str(record.get("method") or "POST").upper() != "POST":
        return False
    if kinds and record.get("kind") not in kinds:
        return False
    if callids and record.get("callid") not in callids:
        return False
    return not (only_valid and not record.get("valid"))


def _post(client: CallbackClient, body: bytes, content_type: object, path: str | None) -> Reply:
    if path is not None and not path.startswith("/"):
        path = "/" + path
    sent_type = content_type if isinstance(content_type, str) else ""
    return client.post(body, content_type=sent_type, path=path.partition("?")[0] if path else None)


def _label(record: dict[str, Any]) -> str:
    from pytest_voicecb.contract import kind_named

    kind = record.get("kind")
    try:
        short = kind_named(kind, short=True) if isinstance(kind, str) else "invalid"
    except ValueError:
        short = f"unknown kind {_text.safe(str(kind))!r}"
    callid = record.get("callid") or "-"
    return _text.one_line(f"{short} {_text.safe(str(callid))}", 80)


def _describe(reply: Reply, verdict: Verdict) -> str:
    status = f"HTTP {reply.status} {_text.preview(reply.body, 80)}"
    if verdict.outcome == "passed":
        return f"{status}: ok"
    word = "FAILED" if verdict.outcome == "failed" else "WARNING"
    return f"{status}: {word}: {_text.one_line('; '.join(verdict.problems), 300)}"
