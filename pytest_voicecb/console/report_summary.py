"""A conformance ``Report`` as Markdown for a CI job's summary page (``$GITHUB_STEP_SUMMARY``).

The verdict and its counts, the causes (one table row each, a worked example with the curl reproducer
for the biggest failing ones), and a table by kind and rule. Everything that came from the handler is
escaped: table cells hold no ``|``, line break or HTML, and code blocks are fenced longer than any run of
backticks inside them. Kept well under GitHub's 1 MiB per step. Rendered from the report's public
attributes only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pytest_voicecb._text import plural, shorten
from pytest_voicecb.conformance.report import RULES
from pytest_voicecb.console.report_html import kind_rule_cells

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pytest_voicecb.conformance.report import Cause, CheckResult, Report

__all__ = ["render"]

CAUSES_LISTED = 30
"""How many causes get a row; the rest are counted in one line."""
EXAMPLES = 3
"""How many failing causes (and the biggest warning) get a worked example."""
EXAMPLE_CHARS = 6000
"""How much of a worked example is kept."""

_MARK = {"passed": "\u2705", "warned": "\u26a0\ufe0f", "failed": "\u274c"}


def _cell(text: object, limit: int = 200) -> str:
    """Text for a table cell: one line, no ``|``, HTML shown as text."""
    flat = " ".join(str(text).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
    return shorten(flat.replace("`", "'"), limit)


def _fenced(text: str) -> str:
    """``text`` in a code block whose fence no backtick run inside can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def render(report: Report, *, command: str | None = None) -> str:
    """The report as Markdown: heading with the verdict, summary line, causes, kind x rule table."""
    word = "failed" if not report.ok else "warned" if report.warnings else "passed"
    verdict = {"failed": "FAILED", "warned": "PASSED with warnings", "passed": "PASSED"}[word]
    lines = [f"## {_MARK[word]} voicecb check: {verdict}", ""]
    lines.append(f"{_cell(report.summary(), 300)}  ")
    lines.append(
        f"Target `{_cell(report.target)}`, path `{_cell(report.path)}`, deadline {report.deadline:g} s"
        f"{', strict' if report.strict else ''}."
    )
    if command:
        lines += ["", "Rerun:", "", _fenced(command)]
    causes = report.causes
    if causes:
        lines += ["", "### Causes", "", *_causes(causes)]
        lines += _examples(causes)
    lines += ["", "### By kind and rule", "", *_matrix(report.results)]
    return "\n".join(lines) + "\n"


def _causes(causes: Sequence[Cause]) -> list[str]:
    rows = ["| | cause | checks | rule | example |", "|---|---|---:|---|---|"]
    for cause in causes[:CAUSES_LISTED]:
        rule = f"{cause.rule}: {RULES.get(cause.rule, '?')}"
        rows.append(
            f"| {_MARK[cause.outcome]} {'FAIL' if cause.outcome == 'failed' else 'WARN'} | {_cell(cause.signature)} "
            f"| {len(cause.results):,} | {_cell(rule, 120)} | `{_cell(cause.example.id, 120)}` |"
        )
    if len(causes) > CAUSES_LISTED:
        rest = causes[CAUSES_LISTED:]
        rows += ["", f"{plural(len(rest), 'more cause')} ({plural(sum(len(c.results) for c in rest), 'check')})."]
    return rows


def _examples(causes: Sequence[Cause]) -> list[str]:
    failing = [cause for cause in causes if cause.outcome == "failed"][:EXAMPLES]
    warning = [cause for cause in causes if cause.outcome == "warned"][:1]
    lines: list[str] = []
    for cause in failing + warning:
        example: CheckResult = cause.example
        details = shorten(example.details(), EXAMPLE_CHARS)
        lines += ["", f"<details><summary>Example: {_cell(example.id, 120)}</summary>", "", _fenced(details)]
        lines += ["", "</details>"]
    return lines


def _matrix(results: Sequence[CheckResult]) -> list[str]:
    """Rows: kinds (then other groups); columns: rules; a cell counts passed / warned / failed."""
    kinds, rules, cells = kind_rule_cells(results)
    rows = ["| kind | " + " | ".join(f"rule {rule}" for rule in rules) + " |", "|---|" + "---|" * len(rules)]
    for kind in kinds:
        row = []
        for rule in rules:
            marks = zip(cells.get((kind, rule), [0, 0, 0]), ("\u2713", "!", "\u2717"), strict=True)
            row.append(" ".join(f"{n}{mark}" for n, mark in marks if n) or "\u2013")
        rows.append(f"| {_cell(kind)} | " + " | ".join(row) + " |")
    rows += [
        "",
        "\u2713 passed, ! warned, \u2717 failed; rules: " + "; ".join(f"{r} {RULES.get(r, '?')}" for r in rules),
    ]
    return rows
