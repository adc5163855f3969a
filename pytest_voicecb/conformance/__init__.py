"""The verdict layer: what a handler must do (``checklist``), the rules a reply is held to (``verdict``),
running every check against one target (``runner``), judging side effects (``inputs``, ``effects``,
``watching``, ``hooks``), the result (``report``), Hypothesis exploration (``explore``) and the pytest
items (``items``).

The names below are re-exported lazily, as ``pytest_voicecb`` does its own: ``pytest_voicecb.plugin``
imports ``items`` at pytest start-up, and importing this package must load neither werkzeug, pydantic
nor faker. Modules of the package import each other by their own paths, never through this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_voicecb import _lazy

if TYPE_CHECKING:  # explicit re-exports, so `from pytest_voicecb.conformance import X` type-checks under --strict
    from pytest_voicecb.conformance.checklist import Check as Check
    from pytest_voicecb.conformance.checklist import Together as Together
    from pytest_voicecb.conformance.checklist import checks as checks
    from pytest_voicecb.conformance.effects import StopRun as StopRun
    from pytest_voicecb.conformance.report import Cause as Cause
    from pytest_voicecb.conformance.report import CheckResult as CheckResult
    from pytest_voicecb.conformance.report import Report as Report
    from pytest_voicecb.conformance.runner import DEFAULT_DEADLINE as DEFAULT_DEADLINE
    from pytest_voicecb.conformance.runner import Runner as Runner
    from pytest_voicecb.conformance.runner import run_conformance as run_conformance
    from pytest_voicecb.conformance.verdict import RULES as RULES
    from pytest_voicecb.conformance.verdict import Outcome as Outcome
    from pytest_voicecb.conformance.verdict import Verdict as Verdict
    from pytest_voicecb.conformance.verdict import judge as judge

_EXPORTS: dict[str, str] = {
    "DEFAULT_DEADLINE": "runner",
    "RULES": "verdict",
    "Cause": "report",
    "Check": "checklist",
    "CheckResult": "report",
    "Outcome": "verdict",
    "Report": "report",
    "Runner": "runner",
    "StopRun": "effects",
    "Together": "checklist",
    "Verdict": "verdict",
    "checks": "checklist",
    "judge": "verdict",
    "run_conformance": "runner",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = _lazy.exports("pytest_voicecb.conformance", _EXPORTS)
