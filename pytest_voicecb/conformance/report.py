"""What a conformance run found: each check's result, grouped into causes, as text or JSON.

A ``CheckResult`` is ``passed``, ``warned`` or ``failed``. Failures and warnings are grouped into
``Cause``s: the rule that broke plus a normalised signature of what came back (``HTTP 500 (the app
logged KeyError: 'accept_time')``), so a handler with one bug gets one paragraph with one worked example
(what was sent, what came back, a curl command to paste), not the same traceback 170 times.
``Report.format(verbose=True)`` shows every result.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_voicecb._text import media_type, plural, preview, safe, shorten
from pytest_voicecb.conformance.effects import Finding, called, diff, jsonable
from pytest_voicecb.conformance.pages import render_html
from pytest_voicecb.conformance.verdict import RULES, Outcome

if TYPE_CHECKING:
    from pytest_voicecb.client import Reply

__all__ = ["RULES", "Cause", "CheckResult", "Finding", "Outcome", "Report", "diff", "signature"]
# RULES and Outcome live with the verdict (``verdict``); re-exported here under their old names.

IDS_SHOWN = 6
"""How many ids of a cause the default report lists before saying how many more."""
EXAMPLES_SHOWN = 3
"""How many failing causes the default report works an example for (and the biggest warning)."""
LOG_LINES = 12
"""How many lines of an app's log the verbose report shows for a cause's example."""


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of one check.

    ``id``; ``outcome`` (``"passed"``, ``"warned"`` or ``"failed"``); the ``rule`` it enforces (or broke);
    ``message`` (one line, empty when passed); the last ``reply`` (None when nothing came back);
    ``problems`` found; ``curl``, a command reproducing a delivery that got no reply (``reproducer()``
    gives the command for any result); ``expected``, what the check demanded;
    ``cause``, the normalised signature it is grouped under; ``effects``, the (before, after) snapshots
    when a side-effect rule broke; ``input`` and ``standing``, what was delivered (``prompt/not-answered``,
    ``valid``; see ``pytest_voicecb.conformance.inputs``); ``change``, what its deliveries did to the effects snapshot
    (None: nothing, or not watched); ``also``, the other findings when it failed for more than one reason
    (a wrong reply and a second SMS).
    """

    id: str
    outcome: Outcome
    rule: int
    message: str = ""
    reply: Reply | None = None
    problems: tuple[str, ...] = ()
    curl: str | None = None
    expected: str = ""
    cause: str = ""
    effects: tuple[object, object] | None = None
    input: str = ""
    standing: str = ""
    change: str | None = None
    also: tuple[Finding, ...] = ()

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def reproducer(self) -> str | None:
        """The curl command reproducing the delivery: ``curl`` when the check set it (nothing came back),
        else the reply's own (rendered only when asked: a 1 MiB body's command takes a while)."""
        if self.curl is not None:
            return self.curl
        return self.reply.curl() if self.reply is not None else None

    @property
    def warned(self) -> bool:
        return self.outcome == "warned"

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    def details(self, *, log_lines: int = LOG_LINES, width: int = 200) -> str:
        """The long form: what was expected and why it fell short, what was sent, what came back (bodies
        cut at ``width`` characters), what the app logged (its last ``log_lines`` lines), and the curl
        reproducer, flush left to paste."""
        word = {"passed": "passed", "warned": "warning", "failed": "failed"}[self.outcome]
        what = self.expected if self.expected and self.problems else self.message
        lines = [f"{self.id} {word}: {what} (CONTRACT.md rule {self.rule}: {RULES.get(self.rule, '?')})"]
        lines += [f"  - {safe(problem)}" for problem in self.problems]
        for finding in self.also:
            also = "also failed" if finding.outcome == "failed" else "also warned"
            lines.append(f"  {also}: {safe(finding.message)} (rule {finding.rule})")
        if self.effects is not None and width > 100:  # the compact form has the diff among the problems
            lines.append(f"  effects before: {shorten(safe(repr(self.effects[0])), 300)}")
            lines.append(f"  effects after:  {shorten(safe(repr(self.effects[1])), 300)}")
        reply = self.reply
        if reply is not None:
            request = reply.request
            lines.append(f"sent: {safe(request.summary())}")
            lines.append(f"      {preview(request.body, width)}")
            size = f"{len(reply.body):,}{'+' if reply.truncated else ''} bytes"
            kind = safe(reply.content_type or "no content type")
            lines.append(f"got:  HTTP {reply.status} ({kind}, {size}, {reply.elapsed * 1000:.1f} ms)")
            lines.append(f"      {preview(reply.body, width)}")
            logged = [line for line in reply.errors.strip().splitlines() if line.strip()]
            if logged and log_lines > 0:
                last = " (its last line)" if log_lines == 1 else f" (its last {log_lines} lines)"
                lines.append("the app logged" + (last if len(logged) > log_lines else "") + ":")
                lines += ["  " + safe(line) for line in logged[-log_lines:]]
        curl = self.reproducer()
        if curl:
            lines.append("reproduce:")
            lines += curl.splitlines()
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the reply summarized, not its full body)."""
        reply = self.reply
        data: dict[str, Any] = {
            "id": self.id,
            "outcome": self.outcome,
            "passed": self.passed,
            "rule": self.rule,
            "message": self.message,
            "problems": list(self.problems),
            "cause": self.cause or None,
            "status": reply.status if reply is not None else None,
            "elapsed": round(reply.elapsed, 6) if reply is not None else None,
            "reply": preview(reply.body) if reply is not None else None,
            "curl": None if self.passed else self.reproducer(),
        }
        if self.input:
            data["input"] = {"class": self.input, "standing": self.standing}
        if self.change is not None:
            data["change"] = self.change
        if self.also:
            data["also"] = [
                {"outcome": f.outcome, "rule": f.rule, "cause": f.cause, "message": f.message} for f in self.also
            ]
        if self.effects is not None:
            data["effects"] = {"before": jsonable(self.effects[0]), "after": jsonable(self.effects[1])}
        return data

    def to_wire(self, body_kept: int = 64 * 1024) -> str:
        """The result as JSON text that survives pytest-xdist's report serialisation, for ``from_wire`` on
        the other side (each body cut at ``body_kept`` bytes)."""
        result, reply = self, self.reply
        data: dict[str, Any] = {
            "id": result.id,
            "outcome": result.outcome,
            "rule": result.rule,
            "message": result.message,
            "problems": list(result.problems),
            "curl": result.curl,
            "expected": result.expected,
            "cause": result.cause,
            "input": result.input,
            "standing": result.standing,
            "change": result.change,
            "also": [list(finding) for finding in result.also],
        }
        if reply is not None:
            request = reply.request
            data["reply"] = {
                "status": reply.status,
                "headers": list(reply.headers.items()),
                "body": reply.body[:body_kept].decode("latin-1"),
                "elapsed": reply.elapsed,
                "truncated": reply.truncated or len(reply.body) > body_kept,
                "errors": reply.errors[-body_kept:],
                "request": {
                    "method": request.method,
                    "url": request.url,
                    "headers": list(request.headers.items()),
                    "body": request.body[:body_kept].decode("latin-1"),
                    "in_process": request.in_process,
                    "redact": request.redact,
                },
            }
        return json.dumps(data)

    @classmethod
    def from_wire(cls, text: str) -> CheckResult:
        """The result ``to_wire`` carried."""
        from werkzeug.datastructures import Headers

        from pytest_voicecb._models import Reply, SentRequest

        data = json.loads(text)
        reply = None
        if data.get("reply"):
            got, sent = data["reply"], data["reply"]["request"]
            request = SentRequest(
                method=sent["method"],
                url=sent["url"],
                headers=Headers([tuple(pair) for pair in sent["headers"]]),
                body=sent["body"].encode("latin-1"),
                in_process=sent["in_process"],
                redact=sent["redact"],
            )
            reply = Reply(
                status=got["status"],
                headers=Headers([tuple(pair) for pair in got["headers"]]),
                body=got["body"].encode("latin-1"),
                elapsed=got["elapsed"],
                request=request,
                truncated=got["truncated"],
                errors=got["errors"],
            )
        return cls(
            id=data["id"],
            outcome=data["outcome"],
            rule=data["rule"],
            message=data["message"],
            reply=reply,
            problems=tuple(data["problems"]),
            curl=data["curl"],
            expected=data["expected"],
            cause=data["cause"],
            input=data["input"],
            standing=data["standing"],
            change=data["change"],
            also=tuple(Finding(f[0], f[1], f[2], f[3], tuple(f[4]), f[5]) for f in data["also"]),
        )

    def seen_as(self, finding: Finding) -> CheckResult:
        """This result told by one of its findings, the others in ``also``."""
        others = tuple(other for other in self.findings() if other.cause != finding.cause)
        return dataclasses.replace(
            self,
            outcome=finding.outcome,  # type: ignore[arg-type]
            rule=finding.rule,
            message=finding.message,
            problems=finding.problems,
            expected=finding.expected,
            cause=finding.cause,
            also=others,
        )

    def findings(self) -> list[Finding]:
        """Every reason this check did not pass: its own, then ``also``."""
        if self.passed:
            return list(self.also)
        own = Finding(self.outcome, self.rule, self.cause or self.message, self.message, self.problems, self.expected)
        return [own, *self.also]


@dataclass(frozen=True)
class Cause:
    """One group of results: the same ``outcome`` with the same ``signature`` (what came back, normalised).

    ``rule`` is the rule most of its results enforce; ``rules`` every rule among them (one bug, such as a
    ``KeyError`` on the kind's key, breaks rules 1, 2, 3, 4 and 5 at once: one cause, not five).
    """

    outcome: Outcome
    rule: int
    signature: str
    results: tuple[CheckResult, ...]
    rules: tuple[int, ...] = ()
    harm: int = 3
    """How much it costs, for ordering (0 first): 0 side effects, 1 crashes (5xx, no reply), 2 wrong replies
    to valid input, 3 the rest."""
    finding: Finding | None = None
    """What the first result was found to do under this cause (it may be one of its ``also`` findings)."""

    @property
    def example(self) -> CheckResult:
        """The worked example: the first result of the group, told by this cause's finding (a check in a
        side-effect cause shows its effect first, even when its reply failed too)."""
        result, finding = self.results[0], self.finding
        if finding is None or finding.cause == (result.cause or result.message):
            return result
        return result.seen_as(finding)

    @property
    def ids(self) -> list[str]:
        return [result.id for result in self.results]

    def headline(self) -> str:
        """``FAIL HTTP 500 (the app logged KeyError: 'accept_time') x 170 checks (rule 1: ...; also rule 4)``."""
        word = "FAIL" if self.outcome == "failed" else "WARN"
        count = plural(len(self.results), "check")
        others = [rule for rule in self.rules if rule != self.rule]
        also = f"; also rule{'s' if len(others) > 1 else ''} {', '.join(map(str, others))}" if others else ""
        return f"{word} {self.signature} \u00d7 {count} (rule {self.rule}: {RULES.get(self.rule, '?')}{also})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "rule": self.rule,
            "rules": list(self.rules or (self.rule,)),
            "signature": self.signature,
            "count": len(self.results),
            "ids": self.ids,
            "example": self.example.id,
            "harm": ["side effects", "crash", "wrong reply to valid input", "other"][self.harm],
        }


@dataclass(frozen=True)
class Report:
    """What ``run_conformance`` found. ``ok`` when nothing failed (warnings do not fail a run).

    ``causes`` groups failures and warnings; ``str(report)`` (``format()``) is one screen for a handler
    with a few bugs, ``format(verbose=True)`` shows everything; ``to_json()`` / ``to_dict()`` carry the
    seed, the target, the options, a summary, the causes and one entry per check.
    """

    target: str
    path: str
    seed: object
    deadline: float
    strict: bool
    results: tuple[CheckResult, ...]
    skipped: tuple[str, ...] = ()
    elapsed: float = 0.0
    in_process: bool = False
    run: int = 0
    """How many runs of the same seed this process made before this one (their callids differ)."""
    effects_name: str = ""
    """The effects callable's name when side effects were watched, else empty."""
    effects_on: tuple[str, ...] | None = None
    """The declared ``effects_on`` classes (None: none declared, so changes on valid input are reported)."""

    @property
    def ok(self) -> bool:
        return not any(result.failed for result in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if result.failed]

    @property
    def warnings(self) -> list[CheckResult]:
        return [result for result in self.results if result.warned]

    @property
    def causes(self) -> list[Cause]:
        """Failures first, ordered by harm (side effects, crashes, wrong replies to valid input, the rest),
        then warnings; within each, the biggest group first. A check that failed for two reasons is in both
        causes."""
        groups: dict[tuple[str, str], list[tuple[CheckResult, Finding]]] = {}
        for result in self.results:
            for finding in result.findings():
                members = groups.setdefault((finding.outcome, finding.cause), [])
                if not members or members[-1][0] is not result:
                    members.append((result, finding))
        causes = []
        for (outcome, sig), found in groups.items():
            counts = Counter(finding.rule for _, finding in found)
            rule = max(counts, key=lambda r: (counts[r], -r))
            results = tuple(result for result, _ in found)
            harm = _harm(*found[0])
            causes.append(Cause(outcome, rule, sig, results, tuple(sorted(counts)), harm, found[0][1]))  # type: ignore[arg-type]
        causes.sort(key=lambda c: (c.outcome != "failed", c.harm if c.outcome == "failed" else 0, -len(c.results)))
        return causes

    def effects_lines(self) -> list[str]:
        """What the handler did, by input class: how many checks changed the snapshot and an example of how
        (the "reported, not judged" table when no ``effects_on`` was declared). Empty when not watched."""
        if not self.effects_name:
            return []
        table: dict[str, list[CheckResult]] = {}
        for result in self.results:
            if result.input and result.standing == "valid":
                table.setdefault(result.input, []).append(result)
        declared = self.effects_on is not None
        judged = f"effects_on={list(self.effects_on or ())!r}" if declared else "no effects_on: reported, not judged"
        lines = [f"side effects seen by {called(self.effects_name)} on valid input, by class ({judged}):"]
        acting = []
        for cls, results in table.items():
            changed = [result for result in results if result.change]
            example = f"; e.g. {changed[0].id}: {shorten(changed[0].change or '', 100)}" if changed else ""
            lines.append(f"  {cls:<20} {len(changed)} of {plural(len(results), 'check')} changed it{example}")
            if changed:
                acting.append(cls)
        if not declared and acting:
            lines.append(f"  to judge these, declare the classes that should act: effects_on={acting!r}")
        return lines

    def __getitem__(self, check_id: str) -> CheckResult:
        """The result of one check by id."""
        for result in self.results:
            if result.id == check_id:
                return result
        raise KeyError(f"no check {check_id!r} in this report")

    def summary(self) -> str:
        """One line: the verdict and the counts, the time and the seed."""
        failed, warned, total = len(self.failures), len(self.warnings), len(self.results)
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        if failed:
            also = f", {warned} warned" if warned else ""
            verdict = f"FAILED: {failed} of {plural(total, 'check')} failed{also}"
        elif warned:
            verdict = f"PASSED with warnings: {total - warned} of {plural(total, 'check')} passed, {warned} warned"
        else:
            verdict = f"PASSED: all {plural(total, 'check')} passed"
        return f"{verdict}{skipped} in {self.elapsed:.2f} s (seed {self.seed!r})"

    def header(self) -> str:
        run = f" (run {self.run + 1} of this seed in this process)" if self.run else ""
        return (
            f"pytest-voicecb conformance of {safe(self.target)}, path {safe(self.path)}, "
            f"deadline {self.deadline:g} s{', strict' if self.strict else ''}, seed {self.seed!r}{run}"
        )

    def format(self, verbose: bool = False, *, more: str = "format(verbose=True)") -> str:
        """The report as text: a header, the causes, the summary. The biggest failing causes (and the biggest
        warning) get a worked example each (what was expected, sent, came back, the app's log line, the curl
        command flush left to paste); the rest one line each, so a handler with several bugs fits one screen.
        ``verbose`` gives every cause its example, every id its own message, and more of the app's log;
        ``more`` names how the reader gets that where the report is printed (the command line says ``-v``)."""
        lines = [self.header()]
        causes = self.causes
        effects = self.effects_lines()
        if effects:
            lines += ["", *effects]
        if causes and self.in_process:
            lines.append("(in-process target: in the curl commands, replace http://localhost:8000 with a live URL)")
        failing = [cause for cause in causes if cause.outcome == "failed"]
        warning = [cause for cause in causes if cause.outcome == "warned"]
        quiet = len(failing) > EXAMPLES_SHOWN  # with many failures, a warning's example is noise
        worked = {id(cause) for cause in failing[:EXAMPLES_SHOWN] + ([] if quiet else warning[:1])}
        brief: list[Cause] = []
        for cause in causes:
            if not verbose and id(cause) not in worked:
                if cause.outcome == "failed":  # every failure shows its example before any warning
                    lines += ["", *_short_example(cause)] if cause is failing[EXAMPLES_SHOWN] else _short_example(cause)
                else:
                    brief.append(cause)
                continue
            lines.append("")
            lines += _worked(cause, verbose)
        if brief:
            lines.append("")
            lines.append(f"{plural(len(brief), 'more cause')} ({more} shows an example of each):")
            lines += [f"{cause.headline()}: {_ids(cause.ids, 3)}" for cause in brief]
        if causes:
            lines.append("")
        lines.append(self.summary())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "path": self.path,
            "seed": self.seed if isinstance(self.seed, (int, str)) else repr(self.seed),
            "deadline": self.deadline,
            "strict": self.strict,
            "elapsed": round(self.elapsed, 4),
            "summary": {
                "total": len(self.results),
                "passed": len(self.results) - len(self.failures) - len(self.warnings),
                "warned": len(self.warnings),
                "failed": len(self.failures),
                "skipped": len(self.skipped),
            },
            "effects": {"name": self.effects_name, "effects_on": list(self.effects_on or [])}
            if self.effects_name
            else None,
            "causes": [cause.to_dict() for cause in self.causes],
            "skipped": list(self.skipped),
            "results": [result.to_dict() for result in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_html(self, *, rerun: str | None = None) -> str:
        """The report as one self-contained HTML page (inline CSS/JS, no network): the verdict, the causes
        with a worked example each, a kind x rule matrix, every check's details, the seed and how to rerun
        (``rerun``, default a ``voicecb check`` command). The console renders it
        (``pytest_voicecb.console.report_html.render``, registered in ``pages`` from above)."""
        return render_html(self, rerun=rerun)


def _harm(result: CheckResult, finding: Finding) -> int:
    if finding.rule == 7:
        return 0
    reply = result.reply
    if finding.cause.startswith(("no reply", "not sent")) or (reply is not None and reply.status >= 500):
        return 1
    return 2 if finding.rule in (1, 4, 5) else 3


def _ids(ids: list[str], shown: int) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def _worked(cause: Cause, verbose: bool) -> list[str]:
    """A cause with its ids and its worked example; the curl command flush left, to paste."""
    lines = [cause.headline()]
    if verbose:
        lines += [f"  - {result.id}: {result.message}" for result in cause.results]
    else:
        lines.append(f"  ids: {_ids(cause.ids, IDS_SHOWN)}")
    example = cause.example
    text = example.details(log_lines=LOG_LINES, width=200) if verbose else _compact(example)
    reproducer = False
    for number, line in enumerate(text.splitlines()):
        if line.startswith("# in-process"):
            continue
        if number == 0:
            lines.append("  e.g. " + line)
        else:
            lines.append(line if reproducer else "  " + line)
        reproducer = reproducer or line == "reproduce:"
    return lines


def _short_example(cause: Cause) -> list[str]:
    """A failing cause past the first few in two lines: its headline, then its example's first problem."""
    example = cause.example
    first = f"; {example.problems[0]}" if example.problems else ""
    what = example.expected if example.expected and example.problems else example.message
    return [cause.headline() + f": {_ids(cause.ids, 3)}", f"  e.g. {example.id}: {shorten(safe(what + first), 160)}"]


def _compact(result: CheckResult) -> str:
    """A worked example in a few lines: the expectation and the first problem, what was sent and what came
    back on one line each, the app's last log line, the curl command."""
    first = f"; {result.problems[0]}" if result.problems else ""
    what = result.expected if result.expected and result.problems else result.message
    lines = [f"{result.id}: {safe(what)}{safe(first)}"]
    reply = result.reply
    if reply is not None:
        request = reply.request
        lines.append(f"sent: {len(request.body):,} bytes {preview(request.body, 90)}")
        kind = safe(reply.content_type or "no content type")
        lines.append(f"got:  HTTP {reply.status} {kind}, {len(reply.body):,} bytes {preview(reply.body, 60)}")
        logged = [line for line in reply.errors.strip().splitlines() if line.strip()]
        if logged:
            lines.append(f"the app logged: {shorten(safe(logged[-1].strip()), 120)}")
    curl = result.reproducer()
    if curl:
        lines.append("reproduce:")
        lines += curl.splitlines()
    return "\n".join(lines)


# ---- signatures: what makes two results the same cause -----------------------------------------

_VOLATILE = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,}\b"), "<hex>"),
    (re.compile(r"(?<![A-Za-z_])\d+(\.\d+)?(?![A-Za-z_])"), "N"),
)


def normalise(text: str) -> str:
    """``text`` with what changes from one delivery to the next (addresses, callids, numbers) replaced,
    so that the same bug gives the same text."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def signature(reply: Reply | None, fallback: str = "") -> str:
    """The normalised signature of a reply: status, body shape, the last line the app logged.

    ``HTTP 500 text/html (the app logged KeyError: 'accept_time')``; ``fallback`` (normalised) stands in
    when nothing came back.
    """
    if reply is None:
        return shorten(normalise(safe(fallback)), 160)
    parts = [f"HTTP {reply.status}", _body_shape(reply)]
    logged = _last_logged(reply.errors) if reply.status >= 500 else ""  # a crash's exception tells bugs apart
    if logged:
        parts.append(f"(the app logged {logged})")
    return " ".join(part for part in parts if part)


def _body_shape(reply: Reply) -> str:
    if reply.truncated:
        return f"a body over {len(reply.body):,} bytes"
    if not reply.body.strip():
        return "(empty body)"
    data = reply.json
    if isinstance(data, dict) and len(data) <= 6:
        shown = json.dumps(
            {key: "…" if key == "errmsg" and isinstance(value, str) else _shape(value) for key, value in data.items()},
            ensure_ascii=False,
        )
        return shorten(safe(shown), 100)
    kind = media_type(reply.content_type) or "no content type"
    if kind.startswith(("text/", "application/json")) and len(reply.body) <= 40:
        return f"{safe(kind)} {normalise(preview(reply.body, 40))}"  # short bodies ("OK", "0") say it all
    return safe(kind)


def _shape(value: object) -> object:
    """A reply field as the signature shows it: message text masked (replies that differ only in their
    words are one behaviour), short codes kept (``"0"`` as a string is a bug of its own)."""
    if isinstance(value, str):
        return value if len(value) <= 3 else "…"
    if isinstance(value, (dict, list)):
        return f"<{type(value).__name__}>"
    return value


def _last_logged(errors: str) -> str:
    """The last line of the app's log that names an exception (or its last line), normalised."""
    lines = [line.strip() for line in errors.splitlines() if line.strip()]
    if not lines:
        return ""
    named = [line for line in lines if _EXCEPTION.match(line)]
    if not named:
        return shorten(normalise(safe(lines[-1])), 100)
    match = _EXCEPTION.match(named[-1])
    assert match is not None
    name, message = match.group(1).rpartition(".")[2], normalise(safe(match.group(2).strip()))
    # The message only where it names the bug (KeyError: 'accept_time'), not where it names a position
    # in the body (JSONDecodeError: Expecting value: line 1 column 1), which differs from body to body.
    if message and ":" not in message and len(message) <= 40:
        return f"{name}: {message}"
    return name


_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))\b:?(.*)$")
