"""``--voicecb-html FILE``: the conformance results of a pytest session as one HTML report.

Two sources: each ``--voicecb-conformance`` item's test report (its check id rides in
``user_properties``, so results reach the xdist controller), and each ``voicecb_conformance()`` call's
``Report`` (kept in the process that ran it: with xdist, those calls stay on the workers and are not in
the page; the items are). At session end the results become one ``Report`` and one page, written to a
temporary file beside FILE and renamed over it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_voicecb._text import shorten

if TYPE_CHECKING:
    from pytest_voicecb.conformance.report import CheckResult, Report

__all__ = ["CHECK_PROPERTY", "Collected", "HtmlReportPlugin", "collected", "write_atomic"]

CHECK_PROPERTY = "voicecb_check"
"""The ``user_properties`` name carrying a conformance item's check id."""
_RESULT = "voicecb_result"  # conformance.items.RESULT_PROPERTY: an item's whole result (CheckResult.to_wire)
_WARNING, _FAILURE, _RULE = "voicecb_warning", "voicecb_failure", "voicecb_rule"  # conformance.items' names


class Collected:
    """What the session ran: check items' reports and ``voicecb_conformance()`` reports."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, str, str]] = []  # (check id, outcome, cause, rule, text)
        self.results: list[CheckResult] = []  # items that carried their whole result
        self.skipped: list[str] = []
        self.reports: list[Report] = []
        self.elapsed = 0.0

    def add_item(self, report: pytest.TestReport) -> None:
        """One test report of a conformance item (setup skips and call results)."""
        found = dict(getattr(report, "user_properties", ()))
        check_id = found.get(CHECK_PROPERTY)
        if not isinstance(check_id, str):
            return
        if report.skipped and report.when in ("setup", "call"):
            self.skipped.append(check_id)
            return
        if report.when != "call":
            return
        self.elapsed += report.duration
        wire = found.get(_RESULT)
        if isinstance(wire, str):
            from pytest_voicecb.conformance.report import CheckResult

            with contextlib.suppress(ValueError, KeyError, TypeError):
                self.results.append(CheckResult.from_wire(wire))
                return
        cause = str(found.get(_FAILURE) or found.get(_WARNING) or "")
        outcome = "failed" if report.failed else "warned" if _WARNING in found else "passed"
        text = report.longreprtext if report.failed else ""
        self.items.append((check_id, outcome, cause, str(found.get(_RULE, "")), text))

    def report(self, *, target: str, path: str, seed: int, deadline: float, strict: bool) -> Report | None:
        """Everything as one ``Report`` (None when the session ran no conformance check)."""
        from pytest_voicecb.conformance.report import Report

        results: list[CheckResult] = [result for found in self.reports for result in found.results]
        results += self.results
        results += self._item_results(seed)
        if not results and not self.skipped:
            return None
        skipped = tuple(self.skipped) + tuple(s for found in self.reports for s in found.skipped)
        return Report(
            target=target,
            path=path,
            seed=seed,
            deadline=deadline,
            strict=strict,
            results=tuple(results),
            skipped=skipped,
            elapsed=self.elapsed + sum(found.elapsed for found in self.reports),
            in_process=any(found.in_process for found in self.reports)
            or any(result.reply is not None and result.reply.request.in_process for result in self.results),
        )

    def _item_results(self, seed: int) -> list[CheckResult]:
        if not self.items:
            return []
        from pytest_voicecb.conformance.checklist import every_check
        from pytest_voicecb.conformance.report import CheckResult
        from pytest_voicecb.factory import PayloadFactory

        rules = {check.id: check.rule for check in every_check(PayloadFactory(seed))}
        results = []
        for check_id, outcome, cause, rule_text, text in self.items:
            rule = rules.get(check_id, 0)
            if rule_text.startswith("rule "):
                with contextlib.suppress(ValueError):
                    rule = int(rule_text[5:].split(":")[0])
            problems = (shorten(text, 3000),) if text else ()
            results.append(
                CheckResult(id=check_id, outcome=outcome, rule=rule, message=cause, cause=cause, problems=problems)  # type: ignore[arg-type]
            )
        return results


def write_atomic(where: str, text: str) -> None:
    """``text`` to ``where`` by a temporary file beside it, renamed over it (0666 minus the umask)."""
    folder = os.path.dirname(os.path.abspath(where))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(where)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, where)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


_COLLECTED = pytest.StashKey[Collected]()


def collected(config: pytest.Config) -> Collected:
    """The session's collected results (``voicecb_conformance()`` adds its reports here)."""
    return config.stash.setdefault(_COLLECTED, Collected())


class HtmlReportPlugin:
    """Registered by ``plugin.py`` when ``--voicecb-html FILE`` is given: gathers, writes, says where."""

    def __init__(self, config: pytest.Config, seed: Callable[[], int]) -> None:
        self.config = config
        self.seed = seed
        self.where = str(config.getoption("voicecb_html"))
        self.said = ""
        folder = os.path.dirname(os.path.abspath(self.where))
        if not os.path.isdir(folder) or os.path.isdir(self.where):
            raise pytest.UsageError(f"--voicecb-html {self.where}: {folder} is not a folder to write the report in")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        collected(self.config).add_item(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the page (on the xdist controller, or the only process)."""
        if hasattr(self.config, "workerinput"):
            return
        from pytest_voicecb._settings import settings
        from pytest_voicecb.conformance.items import rerun_command

        found = settings(self.config)
        seed = self.seed()
        report = collected(self.config).report(
            target=found.target or "the voicecb_target fixture",
            path=found.path or "(the target's path)",
            seed=seed,
            deadline=found.deadline if found.deadline is not None else 2.0,
            strict=found.strict,
        )
        if report is None:
            self.said = f"--voicecb-html: no conformance check ran, {self.where} not written"
            return
        rerun = rerun_command(self.config, "", seed).replace("pytest '' ", "pytest ", 1)
        try:
            write_atomic(self.where, report.to_html(rerun=rerun))
        except OSError as exc:
            self.said = f"--voicecb-html: cannot write {self.where}: {exc.strerror or exc}"
            return
        self.said = f"voicecb HTML report: {os.path.abspath(self.where)} ({report.summary()})"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.said:
            terminalreporter.write_line(self.said)
