"""A conformance ``Report`` as JUnit XML, the report GitLab, Jenkins, Azure Pipelines and most CI systems show.

One ``testcase`` per check: ``classname`` its group (``valid``, ``reject``, ``robust``, ``duplicate``,
``sibling`` ...), ``name`` its id. A failed check has a ``failure`` (its message, its cause, what was sent
and came back, the curl reproducer); a warned check passes with its warning in ``system-out`` (fails under
``--strict``); a ``--skip``ped one is ``skipped``. The ``testsuite`` counts add up: ``tests`` = passed +
warned + failures + skipped. Rendered from the report's public attributes only.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_voicecb.conformance.report import CheckResult, Report

__all__ = ["group_of", "render"]

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold at all, even escaped (a reply may carry any of them)."""


def group_of(check_id: str) -> str:
    """A check's group, its id's first part: ``reject/envelope/empty-body`` -> ``reject``."""
    return check_id.split("/", 1)[0]


def _x(text: object) -> str:
    """Text XML can carry: each character it cannot as a visible ``\\xNN`` / ``\\uNNNN`` escape."""
    return _NOT_XML.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}", str(text)
    )


def render(report: Report, *, name: str = "voicecb check") -> str:
    """The report as a JUnit XML document (``testsuites`` holding one ``testsuite``)."""
    fails = [result for result in report.results if result.failed or (result.warned and report.strict)]
    suite = ET.Element(
        "testsuite",
        name=_x(f"{name} {report.target}"),
        tests=str(len(report.results) + len(report.skipped)),
        failures=str(len(fails)),
        errors="0",
        skipped=str(len(report.skipped)),
        time=f"{report.elapsed:.3f}",
        timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=_x(socket.gethostname()),
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (("target", report.target), ("path", report.path), ("seed", report.seed)):
        ET.SubElement(properties, "property", name=key, value=_x(value))
    for key, value in (("deadline", f"{report.deadline:g}"), ("strict", str(report.strict).lower())):
        ET.SubElement(properties, "property", name=key, value=value)
    for result in report.results:
        _testcase(suite, result, strict=report.strict)
    for check_id in report.skipped:
        case = ET.SubElement(suite, "testcase", classname=_x(group_of(check_id)), name=_x(check_id), time="0")
        ET.SubElement(case, "skipped", message="skipped with --skip")
    ET.SubElement(suite, "system-out").text = _x(report.summary())
    root = ET.Element("testsuites", name=_x(name))
    for key in ("tests", "failures", "errors", "skipped", "time"):
        root.set(key, suite.get(key, ""))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _testcase(suite: ET.Element, result: CheckResult, *, strict: bool) -> None:
    elapsed = result.reply.elapsed if result.reply is not None else 0.0
    case = ET.SubElement(
        suite, "testcase", classname=_x(group_of(result.id)), name=_x(result.id), time=f"{elapsed:.6f}"
    )
    if result.passed:
        return
    cause = f"cause: {result.cause}\n" if result.cause else ""
    if result.failed or strict:
        kind = "failed" if result.failed else "warned (a failure under --strict)"
        failure = ET.SubElement(case, "failure", message=_x(result.message), type=f"rule {result.rule} {kind}")
        failure.text = _x(cause + result.details())
    else:
        ET.SubElement(case, "system-out").text = _x(f"warning: {result.message}\n{cause}{result.details()}")
