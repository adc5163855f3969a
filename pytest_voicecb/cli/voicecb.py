"""The ``voicecb`` command's parser and ``main``, and its ``check`` and ``send`` commands.

Exit codes, the same for every command: 0 all good, 1 the handler broke the contract, 2 a usage or
connection error (said in one line on stderr, never a traceback). ``serve``, ``provider`` and ``replay``
live in modules of their own beside this one.
Everything printed that came from the network is escaped for the terminal (``_text.safe``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _text
from pytest_voicecb.cli import common, provider, replay, serve
from pytest_voicecb.cli.common import UsageError

if TYPE_CHECKING:
    from pytest_voicecb.client import CallbackClient, Reply
    from pytest_voicecb.conformance.report import Report
    from pytest_voicecb.factory import PayloadFactory

__all__ = ["UsageError", "build_parser", "main"]

CHECK_EPILOG = """\
examples:
  voicecb check http://127.0.0.1:8000/voice/callback
  voicecb check https://staging.example.com/voice/cb --deadline 1 --json report.json
  voicecb check http://127.0.0.1:8000/voice/callback --strict --skip 'robust/*' --seed 42
  voicecb check 127.0.0.1:8000 --path-for keypress=/voice/keys   (a handler with a URL per kind)
  voicecb check URL --json - | jq .summary                         (only the JSON on stdout)
  voicecb check URL --html report.html                             (one self-contained page to open)
  voicecb check URL --junit junit.xml --summary "$GITHUB_STEP_SUMMARY"   (reports CI systems read)

Failures and warnings are grouped by cause, with one worked example and a curl command each; -v
lists every check. A warning (success answered to input the provider never sends, questionable input
accepted) does not fail the run unless --strict. Credentials in the URL are printed as <redacted>
unless --show-secrets.

exit status: 0 every check passed (warnings allowed), 1 a check failed, 2 usage or connection error
(nothing listening, no reply within --timeout, the wrong path)."""

SEND_EPILOG = """\
examples:
  voicecb send http://127.0.0.1:8000/voice/callback
  voicecb send URL --kind prompt --result 1
  voicecb send URL --kind failure --set failure_code:=8 --set failure_reason=空号
  voicecb send URL --set callid= --unset fee          (invalid: the reply must still be contract-shaped)
  voicecb send URL --case envelope/form-encoded       (a malformed case; '--case list' lists them)
  voicecb send URL --times 3                          (the same callback three times: duplicates)
  voicecb send URL -H 'X-Token: abc' --timeout 2      (a header; 2 s for the whole delivery)

--set FIELD=VALUE sets a JSON string; --set FIELD:=JSON sets raw JSON (a number, null, true ...),
as httpie does: '--set failure_code:=8' is the number 8, '--set failure_code=8' the string "8". A field
the kind does not have is sent as an extra field, with a warning naming the closest real one.

exit status: 0 the reply honours the contract for that input (a warning allowed, unless --strict), 1 it
does not, 2 usage or connection error (nothing listening, no reply within --timeout)."""

MAIN_EPILOG = """\
examples:
  voicecb check http://127.0.0.1:8000/voice/callback
  voicecb send 127.0.0.1:8000/voice/callback --kind keypress
  voicecb serve --port 9000 --log callbacks.jsonl
  voicecb replay callbacks.jsonl http://127.0.0.1:8000/voice/callback
  voicecb provider --callback-url http://127.0.0.1:8000/voice/callback

'voicecb COMMAND --help' describes each command.

exit status: 0 all good, 1 the handler broke the contract, 2 usage or connection error."""


def _kind_words(last: str = "or", *, outcomes: bool = False) -> str:
    """The registered kinds' short names for help and errors: ``prompt, code, keypress or failure``
    (with ``outcomes``, only the kinds that have a ``result``)."""
    from pytest_voicecb.contract import registered_kinds

    names = [kind.short for kind in registered_kinds() if kind.outcomes or not outcomes]
    if last == "/":
        return "/".join(names)
    return ", ".join(names[:-1]) + f" {last} {names[-1]}" if len(names) > 1 else names[0]


def _results() -> str:
    """The documented ``result`` values for help: ``"0" answered, "1" not answered, "2" call error``."""
    from pytest_voicecb.contract import RESULTS

    return ", ".join(f'"{value}" {words}' for value, words in RESULTS.items())


def build_parser() -> argparse.ArgumentParser:
    """The ``voicecb`` argument parser, with one sub-parser per command."""
    parser = common.VoicecbParser(
        prog="voicecb",
        description="Test voice-notification callback handlers against the provider's contract.",
        epilog=MAIN_EPILOG,
    )
    from pytest_voicecb import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=common.VoicecbParser)
    commands.required = True
    parser.commands = commands.choices
    _add_check(commands)
    _add_send(commands)
    serve.add_serve(commands)
    provider.add_parser(commands)
    replay.add_parser(commands)
    return parser


def _add_check(commands: argparse._SubParsersAction[common.VoicecbParser]) -> None:
    """The ``check`` sub-command."""
    check = commands.add_parser(
        "check",
        help="run the conformance suite against a live handler",
        epilog=CHECK_EPILOG,
        description="Run every conformance check against the handler at URL and print what broke.",
    )
    check.add_argument("url", metavar="URL", type=common.http_url, help="the handler's callback URL")
    check.add_argument("--deadline", type=common.positive, metavar="S", help="seconds a reply may take (rule 6)")
    check.add_argument(
        "--strict",
        action="store_true",
        help="warnings fail too: success answered to input the provider never sends, questionable input accepted",
    )
    check.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="ID",
        help="skip checks by id or glob, e.g. 'robust/*' (repeatable)",
    )
    check.add_argument(
        "--json",
        metavar="FILE",
        help="also write the report as JSON to FILE, replaced when the run ends ('-': only JSON on stdout)",
    )
    check.add_argument(
        "--html",
        metavar="FILE",
        help="also write the report as one self-contained HTML page to FILE, replaced when the run ends",
    )
    check.add_argument(
        "--junit",
        metavar="FILE",
        help="also write JUnit XML to FILE (GitLab, Jenkins, Azure): a testcase per check, replaced when the run ends",
    )
    check.add_argument(
        "--summary",
        metavar="FILE",
        help='also write a Markdown summary to FILE, e.g. "$GITHUB_STEP_SUMMARY", replaced when the run ends',
    )
    check.add_argument("--seed", type=int, metavar="N", help="payload seed, to reproduce a run")
    check.add_argument(
        "--explore",
        type=common.whole,
        default=0,
        metavar="N",
        help="after the fixed checks, send N cases generated by Hypothesis and report each distinct failure "
        "with its shrunk payload, reproducible with --seed (needs pytest-voicecb[hypothesis])",
    )
    check.add_argument("--path", type=common.path, metavar="P", help="path to post to, replacing the URL's path")
    check.add_argument(
        "--path-for",
        action="append",
        default=[],
        metavar="KIND=PATH",
        dest="path_for",
        help="post one kind to its own path, e.g. keypress=/voice/keys (repeatable)",
    )
    check.add_argument(
        "--timeout",
        type=common.positive,
        metavar="S",
        help="seconds a delivery may take in all (connect, send, reply) before it is a failure "
        "(default: twice the deadline)",
    )
    check.add_argument("-v", "--verbose", action="store_true", help="list every check id and message of each cause")
    _add_effects_options(check)
    _add_show_secrets(check)
    common.add_trust_options(check)
    check.set_defaults(run=_check)


def _add_effects_options(check: argparse.ArgumentParser) -> None:
    """What the handler does (CONTRACT.md rule 7), for services in any language."""
    group = check.add_argument_group("side effects (rule 7)")
    watch = group.add_mutually_exclusive_group()
    watch.add_argument("--effects-url", metavar="URL", help="GET before and after each check: its JSON is the snapshot")
    watch.add_argument(
        "--effects-cmd", metavar="CMD", help="run before and after each check: its stdout is the snapshot"
    )
    group.add_argument(
        "--effects-on",
        action="append",
        metavar="CLASS",
        help="an input class whose first valid delivery should change the snapshot, e.g. prompt/not-answered or "
        "failure (repeatable); any other change fails",
    )
    prepare = group.add_mutually_exclusive_group()
    prepare.add_argument("--prepare-url", metavar="URL", help="POST each callback there before its first delivery")
    prepare.add_argument(
        "--prepare-cmd", metavar="CMD", help="run with each callback on stdin before its first delivery"
    )


def _add_send(commands: argparse._SubParsersAction[common.VoicecbParser]) -> None:
    """The ``send`` sub-command."""
    send = commands.add_parser(
        "send",
        help="deliver one callback and judge the reply",
        epilog=SEND_EPILOG,
        description="Deliver one callback (or a malformed case, or N duplicates), print what was sent, "
        "the reply and the verdict.",
    )
    send.add_argument("url", metavar="URL", type=common.http_url, nargs="?", help="the handler's callback URL")
    send.add_argument(
        "--kind",
        default="prompt",
        metavar="K",
        help=f"{_kind_words()} (or the full key, e.g. voicekey_callback)",
    )
    send.add_argument("--result", metavar="R", help=f"call result for {_kind_words('/', outcomes=True)}: {_results()}")
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
    send.add_argument("--times", type=common.count, default=1, metavar="N", help="deliver the same body N times")
    send.add_argument("--strict", action="store_true", help="an invalid callback must be rejected, not accepted")
    send.add_argument("--seed", type=int, metavar="N", help="payload seed, to reproduce a callback")
    send.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        dest="headers",
        help="send a header too, as curl's -H (repeatable)",
    )
    send.add_argument(
        "--timeout",
        type=common.positive,
        default=5.0,
        metavar="S",
        help="seconds a delivery may take in all, connect to last byte of the reply (default 5)",
    )
    _add_show_secrets(send)
    common.add_trust_options(send)
    send.set_defaults(run=_send)


def _add_show_secrets(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--show-secrets",
        action="store_true",
        help="print credentials (Authorization, Cookie, user:pass@ in the URL) instead of <redacted>",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``voicecb`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except UsageError as exc:
        _warn(args.command, str(exc))
        return 2
    except KeyboardInterrupt:
        _warn(args.command, "interrupted")
        return 130
    except BrokenPipeError:
        # stdout was closed (voicecb ... | head): nothing more to say, and nothing to say it on.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug of ours: still one line, with the traceback on request
        if os.environ.get("VOICECB_DEBUG"):
            raise
        _warn(
            args.command,
            f"internal error: {type(exc).__name__}: {exc} (set VOICECB_DEBUG=1 for the traceback)",
        )
        return 2
    return status


# ---- shared helpers -------------------------------------------------------------------------------


def _warn(command: str, message: str) -> None:
    """One line on stderr, escaped: messages may quote what a remote server sent."""
    print(f"voicecb {command}: {_text.one_line(message, 2000)}", file=sys.stderr, flush=True)


def _say(text: str, *, to_stderr: bool = False) -> None:
    """Print our own text holding values from the network: every control character escaped, lines kept."""
    print(_text.safe(text, keep_newlines=True), file=sys.stderr if to_stderr else sys.stdout, flush=True)


_describe_body = common.describe_body


# ---- check ----------------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    from pytest_voicecb.client import DeliveryError
    from pytest_voicecb.conformance.effects import StopRun
    from pytest_voicecb.conformance.runner import DEFAULT_DEADLINE, run_conformance

    deadline = DEFAULT_DEADLINE if args.deadline is None else args.deadline
    timeout = 2 * deadline if args.timeout is None else args.timeout
    paths = _paths_for(args.path_for)
    hooks = _effects_hooks(args)
    report_file = _ReportFile(args.json) if args.json and args.json != "-" else None
    html_file = _ReportFile(args.html, "HTML") if args.html else None
    ci_files = _ci_report_files(args)
    try:
        trust = common.trust_options(args, "check")
        with _client(
            args.url, path=args.path, paths=paths, timeout=timeout, redact=not args.show_secrets, **trust
        ) as client:
            shown = _shown_url(client.url, args.show_secrets)
            _probe(client, args.seed, shown)
            try:
                report = run_conformance(
                    client,
                    deadline=deadline,
                    strict=args.strict,
                    skip=args.skip,
                    seed=args.seed,
                    explore=args.explore,
                    **hooks,
                )
            except DeliveryError as exc:  # the handler went away between the probe and the suite
                raise UsageError(f"no reply from {shown}: {exc.reason}") from None
            except StopRun as exc:  # an effects or prepare hook that cannot work: one error, exit 2
                raise UsageError(str(exc)) from None
            except ImportError as exc:  # --explore without Hypothesis
                raise UsageError(str(exc)) from None
        _warn_unmatched_skips(args.skip, report.skipped)
        # With --json -, stdout holds the JSON alone and the table goes to stderr.
        _say(report.format(verbose=args.verbose, more="-v"), to_stderr=args.json == "-")
        if args.json == "-":
            print(report.to_json(), flush=True)
        elif report_file is not None:
            report_file.commit(report.to_json() + "\n")
        if html_file is not None:
            html_file.commit(report.to_html(rerun=_rerun_command(args, report.seed)))
        for ci_file, render in ci_files:
            ci_file.commit(render(report, _rerun_command(args, report.seed)))
    finally:
        if report_file is not None:
            report_file.discard()
        if html_file is not None:
            html_file.discard()
        for ci_file, _render in ci_files:
            ci_file.discard()
    return 0 if report.ok else 1


def _effects_hooks(args: argparse.Namespace) -> dict[str, Any]:
    """``effects``, ``effects_on`` and ``prepare`` from the options; the snapshot is taken once first, so an
    endpoint that cannot work is one error (exit 2) before any check runs."""
    from pytest_voicecb.conformance import hooks
    from pytest_voicecb.conformance.effects import EffectsOn, StopRun

    found: dict[str, Any] = {}
    if args.effects_url:
        found["effects"] = hooks.EffectsUrl(common.http_url(args.effects_url))
    elif args.effects_cmd:
        found["effects"] = hooks.EffectsCommand(args.effects_cmd)
    if args.prepare_url:
        found["prepare"] = hooks.PrepareUrl(common.http_url(args.prepare_url))
    elif args.prepare_cmd:
        found["prepare"] = hooks.PrepareCommand(args.prepare_cmd)
    if args.effects_on:
        if "effects" not in found:
            raise UsageError("--effects-on needs --effects-url or --effects-cmd: how else to see what the handler did?")
        try:
            EffectsOn(args.effects_on)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        found["effects_on"] = args.effects_on
    if "effects" in found:
        try:
            found["effects"]()
        except StopRun as exc:
            raise UsageError(str(exc)) from None
    return found


def _warn_unmatched_skips(patterns: list[str], skipped: Sequence[str]) -> None:
    """One warning line naming every ``--skip`` that matched no check (a typo skips nothing, silently)."""
    from pytest_voicecb.conformance.checklist import matches

    unmatched = [pattern for pattern in patterns if not any(matches(check, (pattern,)) for check in skipped)]
    if unmatched:
        _warn(
            "check",
            f"warning: --skip {', '.join(repr(p) for p in unmatched)} matched no check "
            "(check ids look like 'robust/*', 'reject/envelope/empty-body', 'duplicate'; -v lists them)",
        )


def _ci_report_files(args: argparse.Namespace) -> list[tuple[_ReportFile, Callable[[Report, str], str]]]:
    """``--junit FILE`` and ``--summary FILE``: each file, opened before the run, with its renderer."""
    files: list[tuple[_ReportFile, Callable[[Report, str], str]]] = []
    if args.junit:
        from pytest_voicecb.console import report_junit

        files.append((_ReportFile(args.junit, "JUnit XML"), lambda report, _rerun: report_junit.render(report)))
    if args.summary:
        from pytest_voicecb.console import report_summary

        files.append(
            (
                _ReportFile(args.summary, "Markdown summary"),
                lambda report, rerun: report_summary.render(report, command=rerun),
            )
        )
    return files


def _rerun_command(args: argparse.Namespace, seed: object) -> str:
    """The ``voicecb check`` command that reruns this run (same target, seed and options), for the HTML report."""
    import shlex

    words = ["voicecb", "check", _shown_url(args.url, args.show_secrets)]
    if isinstance(seed, int):
        words += ["--seed", str(seed)]
    if args.deadline is not None:
        words += ["--deadline", f"{args.deadline:g}"]
    if args.path is not None:
        words += ["--path", args.path]
    for item in args.path_for:
        words += ["--path-for", item]
    for pattern in args.skip:
        words += ["--skip", pattern]
    if args.strict:
        words.append("--strict")
    if args.cacert:
        words += ["--cacert", args.cacert]
    if args.insecure:
        words.append("--insecure")
    for option in ("effects_url", "effects_cmd", "prepare_url", "prepare_cmd"):
        if getattr(args, option, None):
            words += [f"--{option.replace('_', '-')}", getattr(args, option)]
    for cls in args.effects_on or ():
        words += ["--effects-on", cls]
    return shlex.join(words)


def _client(url: str, **options: Any) -> CallbackClient:
    """A client for ``url``; a target or option it refuses is a usage error (exit 2), not a crash."""
    from pytest_voicecb.client import CallbackClient

    try:
        return CallbackClient(url, **options)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _probe(client: CallbackClient, seed: int | None, shown: str) -> None:
    """One valid callback before the suite: no reply, or the wrong URL, is one line and exit 2, not 200 failures."""
    from pytest_voicecb.factory import PayloadFactory

    probe = _deliver(client, PayloadFactory(seed).derive("voicecb check probe").answered(), None, shown)
    hint = "change the path with --path, or --path-for KIND=PATH"
    wrong = common.wrong_callback_url(shown, probe.status, probe.body, probe.headers.get("Content-Type"), hint)
    if wrong is not None:
        raise UsageError(wrong)


def _paths_for(items: list[str]) -> dict[str, str] | None:
    """``--path-for KIND=PATH`` options as the ``paths`` mapping of ``CallbackClient``."""
    from pytest_voicecb.contract import kind_named

    paths: dict[str, str] = {}
    for item in items:
        kind, sep, where = item.partition("=")
        try:
            full = kind_named(kind.strip())
        except ValueError:
            raise UsageError(f"--path-for {item!r}: expected KIND=PATH, KIND one of {_kind_words()}") from None
        if not sep or not where.startswith("/"):
            raise UsageError(f"--path-for {item!r}: expected KIND=PATH with a PATH starting with '/'")
        paths[full] = where
    return paths or None


def _shown_url(url: str, show_secrets: bool) -> str:
    """``url`` as printed: ``user:password@`` redacted unless ``--show-secrets``."""
    from pytest_voicecb.repro import redact_url

    return url if show_secrets else redact_url(url)


class _ReportFile:
    """``--json FILE``: a temporary file beside FILE, renamed over it only when the run has finished.

    Created before the run, so an unwritable place fails at once, not after the suite; a run that ends
    early (exit 2, Ctrl-C) leaves an existing report as it was.
    """

    def __init__(self, where: str, what: str = "JSON") -> None:
        self.where = where
        self.what = what
        folder, name = os.path.split(os.path.abspath(where))
        try:
            if os.path.isdir(where):
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            fd, self.temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise UsageError(f"cannot write the {what} report to {where}: {exc.strerror or exc}") from None
        os.close(fd)
        self.done = False

    def commit(self, text: str) -> None:
        """Write ``text`` and put it in place (readable as a new file would be: 0666 minus the umask)."""
        umask = os.umask(0)
        os.umask(umask)
        try:
            with open(self.temporary, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(self.temporary, 0o666 & ~umask)
            os.replace(self.temporary, self.where)
        except OSError as exc:
            raise UsageError(f"cannot write the {self.what} report to {self.where}: {exc.strerror or exc}") from None
        self.done = True

    def discard(self) -> None:
        """Remove the temporary file if the report was not put in place."""
        if not self.done:
            with contextlib.suppress(OSError):
                os.unlink(self.temporary)


def _deliver(client: CallbackClient, what: Any, timeout: float | None, shown: str, **options: Any) -> Reply:
    """One delivery; no reply at all (refused, unknown host, timeout) becomes a one-line ``UsageError``.

    ``timeout`` bounds the whole delivery (None: the client's own).
    """
    from pytest_voicecb.client import DeliveryError

    try:
        return client.post(what, timeout=timeout, **options)
    except DeliveryError as exc:
        raise UsageError(f"no reply from {shown}: {exc.reason}") from None


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
    from pytest_voicecb.errors import REPRODUCE

    headers = _headers(args.headers)
    failures: list[str] = []
    warnings: list[str] = []
    expected = ""
    trust = common.trust_options(args, "send")
    with _client(args.url, timeout=args.timeout, redact=not args.show_secrets, **trust) as client:
        shown = _shown_url(client.url, args.show_secrets)
        for n in range(1, args.times + 1):
            reply = _deliver(client, what, args.timeout, shown, headers=headers)
            if n == 1:
                _say(f"sent: {label}, seed {factory.seed}")
                _say(f"  {reply.request.summary()}")
                _say(f"  {_text.preview(reply.request.body, 4000)}")
            prefix = f"reply {n}/{args.times}" if args.times > 1 else "reply"
            _say(
                f"{prefix}: HTTP {reply.status} in {reply.elapsed * 1000:.1f} ms: "
                f"{_describe_body(reply.body, reply.headers.get('Content-Type'))}"
            )
            expected, outcome, problem = _verdict(reply, what, args.strict, duplicate=n > 1)
            if outcome == "passed":
                continue
            (failures if outcome == "failed" else warnings).append(problem)
            if args.times > 1:  # with one delivery, the verdict line below says it
                _say(f"  {'FAILED' if outcome == 'failed' else 'WARNING'}: {problem}")
            if outcome == "failed":
                print(f"{REPRODUCE}\n{reply.curl()}", flush=True)  # flush left: indenting would change the body
    return _conclude(expected, failures, warnings, args.times)


def _conclude(expected: str, failures: list[str], warnings: list[str], times: int) -> int:
    """The verdict line, and the exit status: 1 when a reply failed; a warning alone does not fail."""
    counted = f" ({len(failures)} of {times} replies, said above)" if times > 1 else ""
    if failures:
        _say(f"verdict: FAILED{counted}" if times > 1 else f"verdict: FAILED: {failures[0]}")
        return 1
    if warnings:
        said = f" ({len(warnings)} of {times} replies, said above)" if times > 1 else f": {warnings[0]}"
        _say(f"verdict: ok with a WARNING{said} (--strict makes it a failure)")
        return 0
    _say(f"verdict: ok ({expected}, and got one)")
    return 0


def _headers(items: list[str]) -> dict[str, str] | None:
    """``-H 'Name: value'`` options as a header mapping."""
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip() or any(c in item for c in "\r\n"):
            raise UsageError(f"-H expects 'NAME: VALUE', got {item!r}")
        headers[name.strip()] = value.strip()
    return headers or None


def _what_to_send(args: argparse.Namespace, factory: PayloadFactory) -> tuple[Any, str]:
    """What to deliver, and a label saying what it is."""
    from pytest_voicecb.contract import CallbackError, kind_info, kind_named, parse_callback

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
        raise UsageError(f"unknown --kind {args.kind!r}: use {_kind_words()}") from None
    overrides: dict[str, Any] = {}
    if args.result is not None:
        if not kind_info(short).outcomes:
            raise UsageError(f"--result applies to {_kind_words('and', outcomes=True)} callbacks, not {short}")
        overrides["result"] = args.result
    for item in args.sets:
        name, value = _parse_set(item)
        overrides[name] = value
    if args.unset:
        from pytest_voicecb.values import MISSING

        for name in args.unset:
            overrides[name] = MISSING
    _warn_unknown_fields(kind_named(short), list(overrides))
    payload = factory.build(short, **overrides)
    try:
        parse_callback(payload)
    except CallbackError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        return payload, f"an invalid {kind_named(short)} ({problems})"
    return payload, f"a valid {kind_named(short)}"


def _warn_unknown_fields(kind: str, names: list[str]) -> None:
    """A field the kind does not have is sent as an extra field, with a warning: usually it is a typo."""
    import difflib

    from pytest_voicecb.contract import CALLBACK_MODELS

    known = list(CALLBACK_MODELS[kind].model_fields)
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        _warn("send", f"warning: {kind} has no field {name!r}; {hint}(sending it as an extra field)")


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


def _verdict(reply: Reply, sent: Any, strict: bool, *, duplicate: bool) -> tuple[str, str, str]:
    """What the contract expects of the reply to ``sent``, the outcome (passed, warned, failed) and why.

    The verdict is the conformance suite's own (``conformance.judge``), so ``send`` and ``check`` agree.
    """
    from pytest_voicecb.conformance.verdict import expectation, judge

    verdict = judge(reply, sent, strict=strict)
    if verdict.outcome == "passed":
        return verdict.expected, "passed", ""
    what = "a duplicate delivery must be acknowledged again (rule 4): " if duplicate and verdict.expect == "ok" else ""
    expected = expectation(verdict.expect, verdict.rule)
    return verdict.expected, verdict.outcome, what + _text.one_line(f"{expected}; {'; '.join(verdict.problems)}", 400)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
