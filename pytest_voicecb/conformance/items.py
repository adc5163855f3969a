"""``--voicecb-conformance``: one pytest item per conformance check, and a summary of what they found.

The items of one target sit where its ``voicecb_target`` fixture is visible: under the directory of the
conftest.py that defines it (``handlers/voicecb-conformance::duplicate``), beside the test module that
defines it (``test_app-voicecb-conformance::duplicate``), or at the root when only ``--voicecb-target``
or the ini option names one. So JUnit XML, ``-k`` and xdist see each check, and a printed node id can be
passed back to pytest to run that check alone: no such file exists, so ``rewrite_args`` swaps the id for
the directory (or module) that holds the target and remembers which checks were asked for.

Like plugin.py, this module is imported in every pytest run: it imports nothing heavy at module level.
"""

from __future__ import annotations

import itertools
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_voicecb._settings import HOW_TO_CONFIGURE, path_for, settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from _pytest.nodes import Node

    from pytest_voicecb.conformance.report import CheckResult, Report
    from pytest_voicecb.conformance.runner import Runner

    Effects = Callable[[], object] | None
    """What the ``voicecb_effects`` fixture gives: a callable returning a snapshot of what the handler did."""
    Prepare = Callable[[dict[str, Any]], object] | None
    """What the ``voicecb_prepare`` fixture gives: a callable registering each callback's call first."""
    _Hooks = tuple[Effects, list[str] | None, Prepare]
    """What the item's fixtures say about side effects: (effects, effects_on, prepare), compared as a whole."""

NAME = "voicecb-conformance"
"""The name of the (file-less) module holding one target's checks."""

PLUGIN_MODULE = "pytest_voicecb.plugin"
"""Where the default ``voicecb_target`` fixture lives: a target defined there is the configured one."""

# Per-run state, kept in the config's stash (never in module globals: pytester runs many sessions here).
_ARGS = pytest.StashKey["list[tuple[Path, bool]]"]()
"""Each command-line path (after rewriting) and whether it selects parts of a file (``file::test``)."""
_REQUESTED = pytest.StashKey["dict[Path, set[str] | None]"]()
"""Conformance module path -> the check ids named on the command line (None: all of them)."""
_ONLY_FOR_CHECKS = pytest.StashKey["set[Path]"]()
"""Directories and modules added to the arguments only to reach the requested checks."""
_COLLECTORS = pytest.StashKey["list[pytest.Collector]"]()
_TARGETS = pytest.StashKey["dict[str, _TargetRun]"]()

WARNING_PROPERTY = "voicecb_warning"
FAILURE_PROPERTY = "voicecb_failure"
RULE_PROPERTY = "voicecb_rule"
"""JUnit properties (``user_properties``) of a conformance item that warned or failed: its cause (the
reply's normalised signature, as ``Report.causes`` groups them) and the rule it broke."""
RESULT_PROPERTY = "voicecb_result"
"""With ``--voicecb-html``: a conformance item's whole result (``CheckResult.to_wire``), so the page shows what
was sent, what came back and the curl command, as the command line's page does, also under xdist."""
RUN_WARNING_PROPERTY = "voicecb_conformance_warning"
RUN_FAILURE_PROPERTY = "voicecb_conformance_failure"
"""The same for a test that called ``voicecb_conformance()``: one per cause, with its count."""


# ---- selecting: which targets get checks, and rerunning one check by its node id --------------------


def rewrite_args(config: pytest.Config) -> None:
    """Swap each ``.../voicecb-conformance::CHECK`` argument for the directory or module holding it."""
    invocation = config.invocation_params.dir
    requested: dict[Path, set[str] | None] = {}
    hosts: set[Path] = set()
    kept: list[tuple[Path, bool]] = []
    args: list[str] = []
    for arg in config.args:
        strpath, *parts = arg.partition("[")[0].split("::")
        path = Path(os.path.abspath(invocation / strpath))
        host = _host_of(path)
        if host is None:
            args.append(arg)
            kept.append((path, bool(parts)))
            continue
        if parts:
            ids = requested.get(path, set())
            if ids is not None:
                requested[path] = ids | {"::".join(parts)}
        else:
            requested[path] = None
        hosts.add(host)
        args.append(str(host))
    if requested:
        config.args[:] = args
        config.option.voicecb_conformance = True
        config.stash[_REQUESTED] = requested
        config.stash[_ONLY_FOR_CHECKS] = {
            host for host in hosts if not any(path == host or path in host.parents for path, _ in kept)
        }
    config.stash[_ARGS] = kept + [(host, True) for host in hosts]


def _host_of(path: Path) -> Path | None:
    """The directory or module a conformance module path names, if it is one (it exists in no file)."""
    if path.exists():
        return None
    if path.name == NAME:
        return path.parent if path.parent.is_dir() else None
    if path.name.endswith("-" + NAME):
        module = path.with_name(path.name[: -len(NAME) - 1] + ".py")
        return module if module.is_file() else None
    return None


def ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Inside a directory named only to rerun some checks, collect nothing but what other args name."""
    only = config.stash.get(_ONLY_FOR_CHECKS, None)
    if not only or not any(host in collection_path.parents for host in only):
        return None
    wanted = [path for path, _ in config.stash.get(_ARGS, []) if path not in only]
    if any(collection_path == path or collection_path in path.parents for path in wanted):
        return None
    return True


def remember_collector(collector: pytest.Collector) -> None:
    """A conftest.py may define voicecb_target in a directory holding no tests: remember every collector."""
    if collector.config.getoption("voicecb_conformance", False):
        collector.config.stash.setdefault(_COLLECTORS, []).append(collector)


def add_items(session: pytest.Session, items: list[pytest.Item], configured_target: str | None) -> None:
    """Append the checks of every target the command line covers (``pytest_collection_modifyitems``)."""
    config = session.config
    requested = config.stash.get(_REQUESTED, {})
    only = config.stash.get(_ONLY_FOR_CHECKS, set())
    args = config.stash.get(_ARGS, [])
    if only:  # tests collected only because their module holds a requested check's target
        kept = [item for item in items if item.path not in only]
        if len(kept) != len(items):
            config.hook.pytest_deselected(items=[item for item in items if item.path in only])
            items[:] = kept
    parents = _target_nodes(session, items, configured_target)
    wanted: list[tuple[Node, Path, set[str] | None]] = []
    for parent in parents:
        path = _module_path(session, parent)
        if path in requested:
            wanted.append((parent, path, requested[path]))
        elif _covered(parent, path, args):
            wanted.append((parent, path, None))
        # else the command line named other tests: this target's checks are not wanted
    missing = set(requested) - {path for _, path, _ in wanted}
    if missing or (not parents and any(not parts and path.is_dir() for path, parts in args)):
        where = f" for {', '.join(sorted(map(str, missing)))}" if missing else ""
        raise pytest.UsageError(f"--voicecb-conformance{where}: {HOW_TO_CONFIGURE}")
    if not wanted:
        return
    if parents == [session] and configured_target is not None:
        _resolve_configured(configured_target)
    try:
        ids = _check_ids()
    except Exception as exc:  # a bug of ours: say so once instead of an INTERNALERROR
        raise pytest.UsageError(f"--voicecb-conformance: pytest-voicecb could not build its checks: {exc!r}") from exc
    made: list[pytest.Item] = []
    for parent, path, names in wanted:
        unknown = sorted((names or set()) - set(ids))
        if unknown:
            raise pytest.UsageError(
                f"--voicecb-conformance: no check named {', '.join(map(repr, unknown))}; "
                "list them with: pytest --voicecb-conformance --collect-only -q"
            )
        made += _make_items(parent, path, [check_id for check_id in ids if names is None or check_id in names])
    items.extend(made)


def _resolve_configured(spec: str) -> None:
    """A configured target that cannot be imported is one usage error, not one error per check."""
    from pytest_voicecb.client import TargetError, resolve_target

    try:
        resolve_target(spec)
    except (TargetError, TypeError) as exc:
        raise pytest.UsageError(f"--voicecb-conformance: --voicecb-target / voicecb_target ini option: {exc}") from None


def _check_ids() -> list[str]:
    from pytest_voicecb.conformance.checklist import checks
    from pytest_voicecb.factory import PayloadFactory

    return [check.id for check in checks(PayloadFactory(0))]  # the ids do not depend on the seed


def _covered(parent: Node, module_path: Path, args: list[tuple[Path, bool]]) -> bool:
    """Whether a plain path argument runs this target's directory (or module), rather than other tests."""
    if isinstance(parent, pytest.Module):
        return any(not parts and (path == parent.path or path in parent.path.parents) for path, parts in args)
    home = module_path.parent
    return any(
        not parts and (path == home or path in home.parents or (home in path.parents and path.is_dir()))
        for path, parts in args
    )


def _make_items(parent: Node, path: Path, ids: list[str]) -> list[pytest.Item]:
    module = _ConformanceModule.from_parent(parent, path=path)
    batch: list[pytest.Item] = []
    for check_id in ids:
        item = _ConformanceItem.from_parent(module, name=check_id, callobj=_run_check)
        item.check_id = check_id
        module.ihook.pytest_itemcollected(item=item)
        batch.append(item)
    # Reported as collected, so "collected N items" and the selection counts include them.
    collected: list[pytest.Item | pytest.Collector] = list(batch)
    module.ihook.pytest_collectreport(report=pytest.CollectReport(module.nodeid, "passed", None, collected))
    return batch


def _target_nodes(session: pytest.Session, items: list[pytest.Item], configured_target: str | None) -> list[Node]:
    """The nodes defining a user ``voicecb_target`` fixture, or the session if only the option/ini does."""
    manager = session._fixturemanager
    found: dict[Node, None] = {}
    seen: set[object] = set()
    for node in [session, *session.config.stash.get(_COLLECTORS, []), *items]:
        parent = node.parent if isinstance(node, pytest.Item) else node
        if parent in seen:
            continue
        seen.add(parent)
        definitions = manager.getfixturedefs("voicecb_target", node)
        if not definitions or getattr(definitions[-1].func, "__module__", None) == PLUGIN_MODULE:
            continue
        found[_defining_node(session, definitions[-1], node)] = None
    if not found and configured_target is not None:
        found[session] = None
    return list(found)


def _defining_node(session: pytest.Session, definition: Any, seen_from: Node) -> Node:
    node = getattr(definition, "node", None)  # pytest >= 9.1
    if node is not None:
        return node  # type: ignore[no-any-return]
    for candidate in seen_from.listchain():
        if candidate.nodeid == definition.baseid:
            return candidate
    return session


def _module_path(session: pytest.Session, parent: Node) -> Path:
    if isinstance(parent, pytest.Module):
        return parent.path.with_name(f"{parent.path.stem}-{NAME}")
    base = parent.path if isinstance(parent, (pytest.Session, pytest.Dir, pytest.Package)) else session.path
    return base / NAME


class _ConformanceModule(pytest.Module):
    """A module that exists in no file: it holds the conformance items of one target."""

    def _getobj(self) -> Any:
        import sys

        return sys.modules[__name__]

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []  # its items are made by add_items


# ---- running: one runner per target, a preflight, a few lines per failure ---------------------------


class _TargetRun:
    """The checks of one conformance module: its runner, the target and effects it was last given, whether
    the preflight ran, and each cause with the first item that showed it (printed in full once)."""

    # A plain class, not a dataclass: this module is imported in every pytest run, and each dataclass
    # costs about a millisecond to build.
    def __init__(self, runner: Runner, target: object, hooks: _Hooks) -> None:
        self.runner = runner
        self.target = target
        self.hooks = hooks
        self.preflown = False
        self.causes: dict[str, str] = {}


class _ConformanceItem(pytest.Function):
    """One conformance check as a test; its name is the check id."""

    check_id: str

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"voicecb conformance check {self.check_id}"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:  # type: ignore[override]
        """The check's own few lines, with no traceback banner (its frames are the plugin's, not the user's)."""
        if isinstance(excinfo.value, pytest.fail.Exception) and not excinfo.value.pytrace:
            return _CheckFailure(str(excinfo.value), self.nodeid)
        return super().repr_failure(excinfo)

    def setup(self) -> None:
        """Skip once the target's preflight or fixture setup failed: one error, not one per check."""
        blocked = _blocked(self.config)
        key = _key(self)
        if key in blocked:
            pytest.skip(f"not run: {blocked[key]}")
        try:
            super().setup()
        except (Exception, pytest.fail.Exception):
            blocked[key] = f"setting up the target failed in {self.nodeid}"
            raise


class _Crash:
    """Where and why, in one line: what pytest's short summary and JUnit XML's failure message show."""

    def __init__(self, path: str, message: str) -> None:
        self.path, self.lineno, self.message = path, 0, message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def toterminal(self, tw: Any) -> None:
        tw.line(str(self))


class _CheckFailure:
    """A failed check's few lines as its report body; only the first line goes into the short summary,
    on CI too (where pytest would otherwise repeat the whole text there)."""

    def __init__(self, text: str, nodeid: str) -> None:
        self.text = text
        self.reprcrash = _Crash(nodeid, text.partition("\n")[0])

    def __str__(self) -> str:
        return self.text

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line)


_BLOCKED = pytest.StashKey["dict[str, str]"]()


def _blocked(config: pytest.Config) -> dict[str, str]:
    """Conformance module node id -> why its remaining checks are skipped."""
    return config.stash.setdefault(_BLOCKED, {})


def _key(item: pytest.Item) -> str:
    return item.parent.nodeid if item.parent is not None else ""


def _run_check(
    request: pytest.FixtureRequest,
    voicecb_target: object,
    voicecb_seed: int,
    voicecb_effects: Effects,
    voicecb_effects_on: list[str] | None,
    voicecb_prepare: Prepare,
) -> None:
    __tracebackhide__ = True
    item = request.node
    hooks: _Hooks = (voicecb_effects, voicecb_effects_on, voicecb_prepare)
    state = _target_run(item, voicecb_target, voicecb_seed, hooks)
    if not state.preflown:
        state.preflown = True
        reason = state.runner.preflight()
        if reason is not None:
            _blocked(item.config)[_key(item)] = f"the target cannot take callbacks, see {item.nodeid}"
            skipped = "the other conformance checks of this target are skipped"
            pytest.fail(preflight_message(reason, skipped), pytrace=False)
    result = state.runner.run(item.check_id)
    if item.config.getoption("voicecb_html", None):
        item.user_properties.append((RESULT_PROPERTY, result.to_wire()))
    findings = result.findings()
    for finding in findings:  # each cause this check shows, for the end-of-run summary
        name = WARNING_PROPERTY if finding.outcome == "warned" else FAILURE_PROPERTY
        item.user_properties.append((name, finding.cause))
        item.user_properties.append((RULE_PROPERTY, _rule(finding.rule)))
    if not result.failed:
        return
    cause = _cause_of(result)
    first = state.causes.setdefault(cause, item.nodeid)
    pytest.fail(_failure_message(item, result, cause, first, voicecb_seed), pytrace=False)


def _target_run(item: pytest.Item, target: object, seed: int, hooks: _Hooks) -> _TargetRun:
    """One runner per conformance module (same checks, one client, timings shared for the deadline
    check), pointed at whichever target and effects the current item's fixtures gave."""
    from pytest_voicecb.client import TargetError
    from pytest_voicecb.conformance.runner import Runner
    from pytest_voicecb.factory import PayloadFactory

    key = _key(item)
    runs = item.config.stash.setdefault(_TARGETS, {})
    state = runs.get(key)
    path = path_for(item.config, target)
    try:
        if state is None:
            options = settings(item.config).runner_options()
            # Payloads from (seed, this module): rerunning one check alone rebuilds the same ones.
            factory = PayloadFactory((seed, key))
            runner = Runner(
                target,
                path=path,
                factory=factory,
                effects=hooks[0],
                effects_on=hooks[1],
                prepare=hooks[2],
                **options,
            )
            item.config.add_cleanup(runner.close)
            state = runs[key] = _TargetRun(runner, target, hooks)
        else:
            if state.target is not target:
                state.runner.deliver_to(target, path=path)
                state.target = target
            if state.hooks != hooks:
                state.runner.watch(*hooks)
                state.hooks = hooks
    except (TargetError, TypeError, ValueError) as exc:
        pytest.fail(f"the voicecb_target fixture returned an unusable target: {exc}", pytrace=False)
    return state


def _cause_of(result: CheckResult) -> str:
    """The cause of a warned or failed check, as ``Report.causes`` groups them: what came back,
    normalised (ids and numbers masked), so that one bug seen by many checks is one cause."""
    return result.cause or result.message


def _rule(rule: int) -> str:
    from pytest_voicecb.conformance.report import RULES

    return f"rule {rule}: {RULES.get(rule, '?')}"


def _failure_message(item: pytest.Item, result: CheckResult, cause: str, first: str, seed: int) -> str:
    """A few lines: the message, the cause, a flush-left curl and the command rerunning this check."""
    from pytest_voicecb._text import safe

    rerun = f"rerun this check: {rerun_command(item.config, item.nodeid, seed)}"
    if item.config.option.verbose > 0:
        return f"{result.details()}\n{rerun}"
    lines = [f"{result.id}: {safe(result.message)}"]
    lines += [f"also {finding.outcome}: {safe(finding.message)} (rule {finding.rule})" for finding in result.also]
    if first != item.nodeid:
        lines.append(f"cause: {cause} ({_rule(result.rule)}; the same as {first}, shown above)")
        return "\n".join([*lines, rerun])
    lines.append(f"cause: {cause} ({_rule(result.rule)})")
    logged = [line for line in (result.reply.errors if result.reply else "").splitlines() if line.strip()]
    if logged:
        lines.append(f"the app logged (its last line): {safe(logged[-1].strip())}")
    curl = result.reproducer()
    if curl:
        lines += ["reproduce:", *(line for line in curl.splitlines() if line.strip())]
    return "\n".join([*lines, rerun])


def preflight_message(reason: str, what: str) -> str:
    """The one error for a target that cannot take callbacks at all, and what happens to ``what``."""
    return (
        f"the target cannot take callbacks: {reason}\n"
        "(point --voicecb-target or the voicecb_target fixture at the handler, and --voicecb-path or the "
        f"voicecb_path ini option at its route)\n{what}"
    )


def rerun_command(config: pytest.Config, nodeid: str, seed: int) -> str:
    """``pytest 'dir/voicecb-conformance::ID' --voicecb-conformance --voicecb-seed=N`` plus the options in use."""
    words = ["pytest", nodeid, "--voicecb-conformance", f"--voicecb-seed={seed}"]
    for flag, dest in (("--voicecb-target", "voicecb_target"), ("--voicecb-path", "voicecb_path")):
        value = config.getoption(dest, None)
        if value:
            words.append(f"{flag}={value}")
    deadline = config.getoption("voicecb_deadline", None)
    if deadline is not None:
        words.append(f"--voicecb-deadline={deadline:g}")
    if config.getoption("voicecb_strict", False):
        words.append("--voicecb-strict")
    return shlex.join(words)


def drop_repeated_logs(item: pytest.Item, report: pytest.TestReport) -> None:
    """Captured app logs are shown once per cause: a later check with the same cause drops its copies."""
    if not isinstance(item, _ConformanceItem) or not report.failed or report.when != "call":
        return
    state = item.config.stash.get(_TARGETS, {}).get(_key(item))
    if state is None or item.nodeid in state.causes.values():
        return
    report.sections = [(title, text) for title, text in report.sections if not title.startswith("Captured")]


def is_check(item: pytest.Item) -> bool:
    return isinstance(item, _ConformanceItem)


# ---- summing up: warnings (and grouped failures) in the terminal summary ----------------------------


def record_report(node: pytest.Item, report: Report) -> None:
    """``voicecb_conformance()``: its warnings (and failures) by cause, as properties of the test that ran it."""
    for cause in report.causes:
        name = RUN_WARNING_PROPERTY if cause.outcome == "warned" else RUN_FAILURE_PROPERTY
        node.user_properties.append((name, f"{cause.headline()}, e.g. {cause.example.id}"))


def summarize(terminal: Any, config: pytest.Config) -> None:
    """``pytest_terminal_summary``: one line per cause, with how many checks, the rules, an example node id.

    The causes travel as the reports' ``user_properties``, so they reach the xdist controller too.
    """
    grouped: dict[str, dict[str, list[tuple[str, str]]]] = {"failed": {}, "warned": {}}
    runs: dict[str, list[str]] = {"failed": [], "warned": []}
    for reports in terminal.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            properties = list(getattr(report, "user_properties", ()))
            for (name, value), following in itertools.pairwise([*properties, ("", "")]):
                outcome = {WARNING_PROPERTY: "warned", FAILURE_PROPERTY: "failed"}.get(name)
                if outcome is not None:  # each cause is followed by its rule
                    rule = str(following[1]) if following[0] == RULE_PROPERTY else ""
                    grouped[outcome].setdefault(str(value), []).append((report.nodeid, rule))
                elif name == RUN_WARNING_PROPERTY:  # voicecb_conformance(): one per cause, all of them
                    runs["warned"].append(f"{value}, in {report.nodeid}")
    for outcome, title in (("failed", "voicecb conformance failures"), ("warned", "voicecb conformance warnings")):
        groups, lines = grouped[outcome], runs[outcome]
        if not groups and not lines:
            continue
        terminal.write_sep("=", title, yellow=outcome == "warned", red=outcome == "failed", bold=True)
        for cause, seen in sorted(groups.items(), key=lambda group: -len(group[1])):
            count = f"{len(seen)} check{'s' if len(seen) != 1 else ''}"
            rules = "; ".join(dict.fromkeys(rule for _, rule in seen if rule))
            terminal.write_line(f"{cause} \u00d7 {count} ({rules}), e.g. {seen[0][0]}")
        for line in lines:
            terminal.write_line(line)
        if outcome == "warned":
            strict = config.getoption("voicecb_strict", False)
            terminal.write_line(
                "(warnings do not fail the run; --voicecb-strict makes them failures)"
                if not strict
                else "(--voicecb-strict: these failed their checks)"
            )


# ---- voicecb_conformance(): the whole suite in one test ----------------------------------------


def run_all(target: object, options: dict[str, Any]) -> Report:
    """``voicecb_conformance()``: every check, after a preflight that stops a hopeless run with one error."""
    __tracebackhide__ = True
    import time

    from pytest_voicecb.client import TargetError
    from pytest_voicecb.conformance.runner import Runner

    begin = time.perf_counter()
    try:
        runner = Runner(target, **options)
    except (TargetError, TypeError, ValueError) as exc:
        pytest.fail(f"voicecb_conformance: {exc}", pytrace=False)
    with runner:
        reason = runner.preflight()
        if reason is not None:
            pytest.fail(preflight_message(reason, "no conformance check was run"), pytrace=False)
        results = [runner.run(check) for check in runner.checks]
        return runner.report(results, time.perf_counter() - begin)
