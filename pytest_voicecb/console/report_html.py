"""The conformance report as one self-contained HTML page (inline CSS and JS, no network):
``render(report)``, which ``Report.to_html()`` calls (``pytest_voicecb/__init__.py`` registers it).

It holds the verdict, the causes with one worked example each (what was sent, what came back, the curl
command with a copy button), a kind x rule matrix coloured by outcome (a cell filters the list of checks),
every check's details on demand (``<details>``), the seed and how to rerun. Everything that came from the
network goes through ``html.escape`` (after ``_text.safe``/``preview`` for control characters), and only
here: the page's script reads text the server already escaped and sets ``textContent``, never HTML.

Sizes are bounded so the file stays small for big runs (under 1 MiB for 1,000 checks, whatever the app
answered): a check's details are cut at ``DETAIL_CHARS``, a curl command at ``CURL_CHARS``, only warned or
failed checks carry one, and when the details together would pass ``MAX_BYTES`` they share what is left
fairly: short ones stay whole, the longest are cut to one level (``fit``), and say where to find all.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_voicecb import __version__
from pytest_voicecb._text import plural, preview, safe, shorten
from pytest_voicecb.conformance.verdict import RULES
from pytest_voicecb.console import asset
from pytest_voicecb.contract import SHORT_NAMES

if TYPE_CHECKING:
    from pytest_voicecb.conformance.report import CheckResult, Report

__all__ = ["KINDS", "fit", "kind_of", "kind_rule_cells", "render"]

KINDS = tuple(SHORT_NAMES)
"""The documented callback kinds, as check ids name them (the matrix reads the registry: ``SHORT_NAMES``)."""
DETAIL_CHARS = 900
"""How much of a check's details the report keeps."""
CURL_CHARS = 4000
"""How much of a curl command the report keeps (a 1 MiB body's command is cut, and says so)."""
CHECK_CURL_CHARS = 1000
"""A check's own curl command is kept only up to this size (its cause's worked example has a longer one)."""
SUMMARY_CHARS = 160
"""How much of a check's message its one-line summary shows."""
EXAMPLE_BODY = 400
"""How much of a worked example's sent and received bodies the report shows."""
MAX_BYTES = 960_000
"""The size the file keeps under while its checks' details can be cut to fit (1,000 checks: under 1 MiB)."""
MIN_DETAIL = 160
"""Bytes of details every check keeps however many checks there are (the file may then pass ``MAX_BYTES``)."""
_WHOLE = "voicecb check --json FILE has every check whole"
_CHECK_END = "</pre></details>"
_NOTE_ROOM = 120
"""Bytes a cut check's details keep free for the note saying it was cut."""


def kind_of(check_id: str) -> str:
    """The matrix row of a check: the kind its id names (``valid/prompt/typical`` -> ``prompt``), else its
    group (``reject/envelope/empty-body`` -> ``envelope``, ``duplicate/...`` -> ``duplicate``)."""
    parts = check_id.split("/")
    return parts[1] if len(parts) > 2 else parts[0]


def _e(text: object) -> str:
    """Escaped for an attribute value or element content."""
    return html.escape(str(text), quote=True)


def _t(text: str) -> str:
    """Escaped for element content only (quotes kept as they are: JSON bodies stay readable and small)."""
    return html.escape(text, quote=False)


def render(report: Report, *, rerun: str | None = None, title: str = "pytest-voicecb conformance report") -> str:
    """The report as one HTML document. ``rerun`` is the command that reruns it (default: ``voicecb check``
    with the target and the seed)."""
    if rerun is None and report.in_process:
        strict = ", strict=True" if report.strict else ""
        rerun = f"run_conformance(app, seed={report.seed!r}, deadline={report.deadline:g}{strict})"
    if rerun is None:
        seed = f" --seed {report.seed}" if isinstance(report.seed, int) else ""
        strict = " --strict" if report.strict else ""
        rerun = f"voicecb check {report.target}{seed} --deadline {report.deadline:g}{strict}"
    verdict = "failed" if not report.ok else "warned" if report.warnings else "passed"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network: nothing may be fetched, not even a favicon.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        '<link rel="icon" href="data:,">',
        f"<title>{_e(title)}</title>",
        f"<style>{asset('report.css')}</style>",
        "</head><body>",
        f'<header class="verdict {verdict}" id="verdict"><h1>{_e(title)}</h1>',
        f'<p class="summary">{_e(safe(report.summary()))}</p>',
        f'<p class="meta">{_e(report.header())}</p>',
        f'<p class="meta">seed <code id="seed">{_e(repr(report.seed))}</code> &middot; rerun: '
        f'<code id="rerun">{_e(safe(rerun))}</code> {_copy("rerun")}</p>',
        "</header><main>",
    ]
    if report.in_process:
        note = "In-process target: in the curl commands, replace http://localhost:8000 with a live URL."
        parts.append(f'<p class="note">{note}</p>')
    parts += _causes(report)
    effects = report.effects_lines()
    if effects:  # what the handler did, by input class (rule 7)
        parts.append(
            f'<section id="effects"><h2>Side effects</h2><pre>{_t(safe(chr(10).join(effects)))}</pre></section>'
        )
    parts += _matrix(report.results)
    end = []
    if report.skipped:
        end.append(f"<h2>Skipped ({len(report.skipped)})</h2><p>{_e(', '.join(report.skipped))}</p>")
    end.append(f"</main><footer>pytest-voicecb {_e(__version__)}</footer><script>{asset('report.js')}</script>")
    end.append("</body></html>")
    rows = [_check_row(result) for result in report.results]
    details = [_details(result) for result in report.results]
    used = sum(len(part.encode()) + 1 for part in (*parts, *end, *rows)) + len(rows) * len(_CHECK_END)
    budget = MAX_BYTES - used - 2_000  # the checks section's own markup
    parts += _checks(report.results, rows, fit(details, budget))
    return "\n".join(parts + end) + "\n"


def _copy(target: str) -> str:
    """A copy button for the element with id ``target``."""
    return f'<button type="button" class="copy" data-copy="{_e(target)}">copy</button>'


def _causes(report: Report) -> list[str]:
    causes = report.causes
    if not causes:
        return ['<section id="causes"><h2>Causes</h2><p>No check failed or warned.</p></section>']
    out = [f'<section id="causes"><h2>Causes ({len(causes)})</h2>']
    for number, cause in enumerate(causes):
        ids = cause.ids
        more = f" and {len(ids) - 12} more" if len(ids) > 12 else ""
        example = cause.example
        out.append(f'<article class="cause {cause.outcome}">')
        out.append(f"<h3>{_e(safe(cause.headline()))}</h3>")
        out.append(f'<p class="ids">checks: {_e(", ".join(ids[:12]))}{_e(more)}</p>')
        out.append(f'<p>e.g. <a href="#check-{_e(example.id)}">{_e(example.id)}</a>: {_e(_what(example))}</p>')
        out += _exchange(example, EXAMPLE_BODY)
        curl = example.reproducer()
        if curl:
            element = f"curl-{number}"
            out.append(f'<div class="curl"><p>reproduce: {_copy(element)}</p>')
            out.append(f'<pre id="{element}">{_t(_cut_curl(curl))}</pre></div>')
        out.append("</article>")
    out.append("</section>")
    return out


def _what(result: CheckResult) -> str:
    first = f"; {result.problems[0]}" if result.problems else ""
    what = result.expected if result.expected and result.problems else result.message
    return safe(what + first)


def _exchange(result: CheckResult, width: int) -> list[str]:
    """What was sent and what came back (and the app's last log line), as escaped ``<pre>`` blocks."""
    reply = result.reply
    if reply is None:
        return ['<p class="got">no reply</p>']
    request = reply.request
    kind = safe(reply.content_type or "no content type")
    size = f"{len(reply.body):,}{'+' if reply.truncated else ''} bytes"
    out = [
        f'<p class="sent">sent: {_e(safe(request.summary()))}</p><pre>{_t(preview(request.body, width))}</pre>',
        f'<p class="got">got: HTTP {reply.status} ({_e(kind)}, {size}, {reply.elapsed * 1000:.1f} ms)</p>'
        f"<pre>{_t(preview(reply.body, width))}</pre>",
    ]
    logged = [line for line in reply.errors.strip().splitlines() if line.strip()]
    if logged:
        out.append(f'<p class="log">the app logged: <code>{_e(shorten(safe(logged[-1].strip()), 200))}</code></p>')
    return out


def _cut_curl(curl: str) -> str:
    if len(curl) <= CURL_CHARS:
        return curl
    return curl[:CURL_CHARS] + f"\n# ... cut: the command is {len(curl):,} characters (voicecb check --json has it)"


def kind_rule_cells(
    results: Sequence[CheckResult],
) -> tuple[list[str], list[int], dict[tuple[str, int], list[int]]]:
    """The kind x rule matrix: its rows (kinds, then other groups), its columns (rules), and each cell's
    [passed, warned, failed] counts (the HTML report and the Markdown summary both show it)."""
    cells: dict[tuple[str, int], list[int]] = {}
    for result in results:
        counts = cells.setdefault((kind_of(result.id), result.rule), [0, 0, 0])
        counts[("passed", "warned", "failed").index(result.outcome)] += 1
    known = tuple(SHORT_NAMES)  # every registered kind, in the registry's order; other groups after them
    kinds = [kind for kind in known if any(key[0] == kind for key in cells)]
    kinds += sorted({key[0] for key in cells} - set(known))
    return kinds, sorted({key[1] for key in cells}), cells


def _matrix(results: Sequence[CheckResult]) -> list[str]:
    """Rows: kinds (then other groups); columns: rules; a cell counts passed/warned/failed, coloured by the worst."""
    kinds, rules, cells = kind_rule_cells(results)
    out = ['<section id="matrix-section"><h2>Kind &times; rule</h2><table id="matrix"><thead><tr><th>kind</th>']
    out += [f'<th title="{_e(RULES.get(rule, "?"))}">rule {rule}</th>' for rule in rules]
    out.append("</tr></thead><tbody>")
    for kind in kinds:
        out.append(f"<tr><th>{_e(kind)}</th>")
        for rule in rules:
            found = cells.get((kind, rule))
            if found is None:
                out.append('<td class="none">&ndash;</td>')
                continue
            passed, warned, failed = found
            worst = "failed" if failed else "warned" if warned else "passed"
            label = " ".join(f"{n}{mark}" for n, mark in ((passed, "\u2713"), (warned, "!"), (failed, "\u2717")) if n)
            title = f"{kind}, rule {rule}: {passed} passed, {warned} warned, {failed} failed"
            out.append(
                f'<td class="{worst}" data-kind="{_e(kind)}" data-rule="{rule}" title="{_e(title)}">'
                f'<button type="button">{label}</button></td>'
            )
        out.append("</tr>")
    out.append('</tbody></table><p class="hint">A cell lists its checks below.</p></section>')
    return out


def _check_row(result: CheckResult) -> str:
    """A check's ``<details>`` element up to its details (its ``<pre>`` is left open for them)."""
    message = f" &mdash; {_e(safe(shorten(result.message, SUMMARY_CHARS)))}" if result.message else ""
    return (
        f'<details class="check {result.outcome}" id="check-{_e(result.id)}" data-kind="{_e(kind_of(result.id))}"'
        f' data-rule="{result.rule}" data-outcome="{result.outcome}">'
        f'<summary><span class="badge">{result.outcome}</span> <code>{_e(result.id)}</code>{message}</summary>'
        "<pre>"
    )


def _checks(results: Sequence[CheckResult], rows: Sequence[str], details: Sequence[str]) -> list[str]:
    """Every check, its details on demand; filters by text and outcome."""
    out = [
        f'<section id="checks-section"><h2>Checks ({plural(len(results), "check")})</h2>',
        '<div class="filters"><input id="filter" type="search" placeholder="filter by id or message"> '
        '<select id="outcome"><option value="">any outcome</option><option>passed</option>'
        "<option>warned</option><option>failed</option></select> "
        '<button type="button" id="clear">show all</button> <span id="shown"></span></div>',
        '<div id="checks">',
    ]
    out += [f"{row}{text}{_CHECK_END}" for row, text in zip(rows, details, strict=True)]
    out.append("</div></section>")
    return out


def fit(details: Sequence[tuple[str, str]], budget: int) -> list[str]:
    """Each check's escaped details (text, then its curl command when it has one), all within ``budget``
    bytes: while they fit, whole; else each gets a fair share (the shorter ones whole, the rest cut to one
    level, never under ``MIN_DETAIL``), a curl command is kept whole or left out, and a cut says so."""
    whole = [_t(text) + (f"\nreproduce:\n{_t(curl)}" if curl else "") for text, curl in details]
    sizes = [len(text.encode()) for text in whole]
    if sum(sizes) <= budget:
        return whole
    level, left, count = MIN_DETAIL, budget, len(sizes)
    for size in sorted(sizes):
        if size * count > left:
            level = max(left // max(count, 1), MIN_DETAIL)
            break
        left -= size
        count -= 1
    out = []
    for (text, curl), kept, size in zip(details, whole, sizes, strict=True):
        if size <= level:
            out.append(kept)
            continue
        escaped = _t(text)
        if curl and len(escaped.encode()) + _NOTE_ROOM <= level:
            out.append(f"{escaped}\n(the curl command is left out to fit the report: {_WHOLE})")
        else:
            out.append(_escaped_within(text, max(level - _NOTE_ROOM, 40)) + f"\n(cut to fit the report: {_WHOLE})")
    return out


def _escaped_within(text: str, limit: int) -> str:
    """``text`` shortened until, escaped, it takes at most ``limit`` bytes (escaping and UTF-8 grow it)."""
    keep = limit
    while True:
        escaped = _t(shorten(text, keep))
        size = len(escaped.encode())
        if size <= limit or keep <= 1:
            return escaped
        keep = max(min(keep * limit // size, keep - 1), 1)  # in proportion: "<" takes 4 bytes escaped


def _details(result: CheckResult) -> tuple[str, str]:
    """A check's details, bounded, and its curl command ('' for none): rule, message, problems, what came
    back, the app's log; the command (which holds what was sent) for a warned or failed check, else a
    preview of what was sent."""
    lines = [f"CONTRACT.md rule {result.rule}: {RULES.get(result.rule, '?')}"]
    if len(result.message) > SUMMARY_CHARS:  # else the summary line shows it whole
        lines.append(safe(result.message))
    lines += [f"  - {safe(problem)}" for problem in result.problems[:8] if problem not in result.message]
    if result.effects is not None:
        lines.append(f"effects before: {shorten(safe(repr(result.effects[0])), 200)}")
        lines.append(f"effects after:  {shorten(safe(repr(result.effects[1])), 200)}")
    reply = result.reply
    curl = None if result.passed else result.reproducer()
    curl = "\n".join(line for line in (curl or "").splitlines() if not line.startswith("# in-process"))
    if reply is not None:
        if not curl or len(curl) > CHECK_CURL_CHARS:
            lines.append(f"sent: {safe(reply.request.summary())} {preview(reply.request.body, 160)}")
        kind = safe(reply.content_type or "no content type")
        got = f"got:  HTTP {reply.status} ({kind}, {reply.elapsed * 1000:.1f} ms)"
        # The message usually quotes the reply already ("got HTTP 500 <body>"): then only its timing.
        said = f"got HTTP {reply.status} " in result.message
        lines.append(got if said else f"{got} {preview(reply.body, 120)}")
        logged = [line for line in reply.errors.strip().splitlines() if line.strip()]
        lines += ["the app logged: " + shorten(safe(line), 200) for line in logged[-3:]]
    text = shorten("\n".join(lines), DETAIL_CHARS)
    if curl and len(curl) <= CHECK_CURL_CHARS:
        return text, curl
    if curl:
        text += f"\nreproduce: a {len(curl):,}-character curl command (voicecb check --json has it)"
    return text, ""
