"""The pytest plugin: options, hooks and fixtures, wired to the library's plain objects.

pytest imports this module in every run of every project that installs pytest-voicecb, used or not,
so it imports nothing heavy at module level: werkzeug, pydantic and faker are loaded by the first
fixture that needs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator

    from pytest_voicecb.factory import PayloadFactory


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voicecb", "voice-notification callbacks (pytest-voicecb)")
    _add_payload_options(parser, group)
    _add_server_options(parser, group)
    _add_client_options(parser, group)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "voicecb(allow_invalid=False): options for pytest-voicecb's fixtures in this test; "
        "allow_invalid=True lets voicecb_server receive invalid callbacks without failing the test.",
    )
    _configure_seed(config)


# ---- payloads and seeding (issue 2) ---------------------------------------------------------------


# One seed per session, resolved on the controller and handed to xdist workers; each test's payload
# stream is PayloadFactory((seed, test id)), so it depends on nothing but those two.

_SEED = pytest.StashKey[int]()
_SEED_SOURCE = pytest.StashKey[str]()
_CACHE_KEY = "voicecb/seed"


def _add_payload_options(parser: pytest.Parser, group: Any) -> None:
    group.addoption(
        "--voicecb-seed",
        action="store",
        dest="voicecb_seed",
        default=None,
        type=_seed_option,
        metavar="N|last",
        help="seed for voicecb payloads (an integer, or 'last' to reuse the previous run's). "
        "Default: --randomly-seed when pytest-randomly is active, else a random seed shown in the header.",
    )


def _seed_option(value: str) -> int | str:
    if value == "last":
        return value
    try:
        return int(value)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r} is not an integer or 'last'") from None


def _configure_seed(config: pytest.Config) -> None:
    """Resolve the session's seed: the controller's (xdist), --voicecb-seed, or a fresh random one."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "voicecb_seed" in workerinput:
        seed, source = int(workerinput["voicecb_seed"]), "controller"
    else:
        option = config.getoption("voicecb_seed", None)
        if option == "last":
            cache = getattr(config, "cache", None)
            if cache is None:
                raise pytest.UsageError("--voicecb-seed=last needs pytest's cache (the cacheprovider plugin)")
            previous = cache.get(_CACHE_KEY, None)
            if isinstance(previous, int):
                seed, source = previous, "the last run's"
            else:
                seed, source = _fresh_seed(), "random: no previous run to reuse"
        elif isinstance(option, int):
            seed, source = option, "given"
        else:
            seed, source = _fresh_seed(), "random"
    config.stash[_SEED] = seed
    config.stash[_SEED_SOURCE] = source


def _fresh_seed() -> int:
    import os

    return int.from_bytes(os.urandom(4), "big")


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    randomly_seed = config.getoption("randomly_seed", None) if config.pluginmanager.hasplugin("randomly") else None
    if config.stash[_SEED_SOURCE] == "random" and isinstance(randomly_seed, int):
        # pytest-randomly resolved its seed (a number, "last" or a fresh one) in its pytest_configure;
        # reading it here works with every version, where its random_seeder entry point is called at
        # different moments (session start in 5.1, the report header in 5.0) and without the config.
        config.stash[_SEED] = randomly_seed
        config.stash[_SEED_SOURCE] = "--randomly-seed"
    cache = getattr(config, "cache", None)
    if cache is not None and not hasattr(config, "workerinput"):
        cache.set(_CACHE_KEY, config.stash[_SEED])


def pytest_report_header(config: pytest.Config) -> str:
    return f"voicecb: --voicecb-seed={config.stash[_SEED]} ({config.stash[_SEED_SOURCE]})"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker builds payloads from the controller's seed."""
    node.workerinput["voicecb_seed"] = node.config.stash[_SEED]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failing test that used a voicecb fixture says which seed reproduces its payloads."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if isinstance(item, _ConformanceItem):
        return  # a conformance check prints its own rerun line (its node id names no file)
    if report.failed and any(name.startswith("voicecb_") for name in getattr(item, "fixturenames", ())):
        import shlex

        seed = item.config.stash[_SEED]
        rerun = f"pytest {shlex.quote(item.nodeid)} --voicecb-seed={seed}"
        report.sections.append(("voicecb", f"payloads were built with --voicecb-seed={seed}; rerun with: {rerun}"))


@pytest.fixture(scope="session")
def voicecb_seed(pytestconfig: pytest.Config) -> int:
    """The session's payload seed (``--voicecb-seed``), the same on every xdist worker."""
    return pytestconfig.stash[_SEED]


@pytest.fixture
def voicecb_payload(request: pytest.FixtureRequest, voicecb_seed: int) -> PayloadFactory:
    """A ``PayloadFactory`` whose stream derives from (session seed, this test's id) only.

    ``voicecb_payload()`` is an answered ``voiceprompt_callback``; ``.code()``, ``.keypress()``,
    ``.failure()``, ``.batch(n)``, ``.variants()`` and ``.malformed()`` build the rest.
    """
    from pytest_voicecb.factory import PayloadFactory

    return PayloadFactory((voicecb_seed, request.node.nodeid))


# ---- the recording server (issue 3) ---------------------------------------------------------------

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_voicecb.server import CallbackServer


def _add_server_options(parser: pytest.Parser, group: Any) -> None:
    pass


def _allows_invalid(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("voicecb")
    return bool(marker is not None and marker.kwargs.get("allow_invalid", False))


def _fail_on_unexpected_invalid(servers: list[CallbackServer]) -> None:
    """Strict by default: an invalid callback the test did not declare fails it, showing the request."""
    messages = []
    for server in servers:
        try:
            server.check()
        except AssertionError as exc:
            messages.append(str(exc))
    if messages:
        hint = "(or mark the test @pytest.mark.voicecb(allow_invalid=True))"
        pytest.fail("\n\n".join(messages) + f"\n{hint}", pytrace=False)


@pytest.fixture(scope="session")
def _voicecb_session_server() -> Iterator[CallbackServer]:
    """The one server of this session (of this xdist worker), started by the first test that asks."""
    from pytest_voicecb.server import CallbackServer

    with CallbackServer() as server:
        yield server


@pytest.fixture
def voicecb_server(_voicecb_session_server: CallbackServer, request: pytest.FixtureRequest) -> Iterator[CallbackServer]:
    """The session's recording ``CallbackServer``, reset for this test (no records, no scripts).

    Point the code under test at ``voicecb_server.url``. At teardown the test fails if an invalid
    callback arrived that it did not declare with ``voicecb_server.expect_invalid()`` or
    ``@pytest.mark.voicecb(allow_invalid=True)``.
    """
    server = _voicecb_session_server
    server.reset()
    if _allows_invalid(request):
        server.expect_invalid()
    yield server
    try:
        _fail_on_unexpected_invalid([server])
    finally:
        server.reset()  # wake any request still sleeping in this test's scripted delay


@pytest.fixture
def voicecb_server_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., CallbackServer]]:
    """Start extra ``CallbackServer`` s with other options; all are stopped and checked at teardown.

    ``voicecb_server_factory(host="127.0.0.1", port=0, path=None, max_body_size=..., timeout=...,
    on_callback=None)`` returns a running server, strict like ``voicecb_server``.
    """
    from pytest_voicecb.server import CallbackServer

    servers: list[CallbackServer] = []
    allow_invalid = _allows_invalid(request)

    def start_server(*args: Any, **options: Any) -> CallbackServer:
        server = CallbackServer(*args, **options).start()
        servers.append(server)
        if allow_invalid:
            server.expect_invalid()
        return server

    yield start_server
    for server in servers:
        server.stop()
    _fail_on_unexpected_invalid(servers)


# ---- client, assertions and conformance (issue 4) -------------------------------------------------

# Registering costs nothing: the module is only imported (and rewritten) when a test uses it.
pytest.register_assert_rewrite("pytest_voicecb.assertions")

if TYPE_CHECKING:
    from collections.abc import Callable

    from _pytest.nodes import Node

    from pytest_voicecb.client import CallbackClient
    from pytest_voicecb.conformance import Report, Runner

_HOW_TO_CONFIGURE = """\
pytest-voicecb has no target: tell it which callback handler to test, in one of three ways.

1. A fixture in conftest.py returning an in-process app or a URL:

       import pytest

       @pytest.fixture
       def voicecb_target():
           from myproject.app import app  # Flask / Django WSGI app, or FastAPI / Starlette ASGI app
           return app                     # or "http://127.0.0.1:8000/voice/callback"

2. On the command line:

       pytest --voicecb-target=http://127.0.0.1:8000/voice/callback
       pytest --voicecb-target=myproject.wsgi:application

3. In the pytest configuration (pytest.ini [pytest], or pyproject.toml [tool.pytest.ini_options]):

       voicecb_target = myproject.wsgi:application"""


def _add_client_options(parser: pytest.Parser, group: Any) -> None:
    group.addoption(
        "--voicecb-target",
        dest="voicecb_target",
        default=None,
        metavar="URL|MODULE:ATTR",
        help="the callback handler voicecb_client and the conformance suite deliver to: an http(s) URL, or "
        "'module:attribute' naming a WSGI or ASGI app (overrides the voicecb_target ini option).",
    )
    parser.addini(
        "voicecb_target",
        "the callback handler to test: an http(s) URL or 'module:attribute' naming a WSGI or ASGI app.",
        default="",
    )
    group.addoption(
        "--voicecb-conformance",
        action="store_true",
        dest="voicecb_conformance",
        help="add one test per conformance check (ids like valid/prompt/typical, reject/..., duplicate) "
        "against the voicecb_target fixture, --voicecb-target or the voicecb_target ini option.",
    )
    group.addoption(
        "--voicecb-deadline",
        dest="voicecb_deadline",
        type=_seconds_option,
        default=None,
        metavar="SECONDS",
        help="how long a handler may take to answer in the conformance checks (default 2).",
    )
    group.addoption(
        "--voicecb-strict",
        action="store_true",
        dest="voicecb_strict",
        help="conformance: questionable callbacks (the robust/* checks) must be rejected, not just survived.",
    )


def _seconds_option(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


def _configured_target(config: pytest.Config) -> str | None:
    """The target from --voicecb-target, else the ini option, else None."""
    option = config.getoption("voicecb_target", None)
    if option:
        return str(option)
    ini = str(config.getini("voicecb_target") or "").strip()
    return ini or None


def _conformance_options(config: pytest.Config) -> dict[str, Any]:
    options: dict[str, Any] = {"strict": bool(config.getoption("voicecb_strict", False))}
    deadline = config.getoption("voicecb_deadline", None)
    if deadline is not None:
        options["deadline"] = deadline
    return options


@pytest.fixture
def voicecb_target(pytestconfig: pytest.Config) -> object:
    """The handler under test: override this fixture in conftest.py to return an app or a URL.

    By default it comes from ``--voicecb-target`` or the ``voicecb_target`` ini option.
    """
    spec = _configured_target(pytestconfig)
    if spec is None:
        pytest.fail(_HOW_TO_CONFIGURE, pytrace=False)
    from pytest_voicecb.client import TargetError, resolve_target

    try:
        return resolve_target(spec)
    except (TargetError, TypeError) as exc:
        pytest.fail(f"--voicecb-target / voicecb_target ini option: {exc}", pytrace=False)


@pytest.fixture
def voicecb_client(voicecb_target: object) -> Iterator[CallbackClient]:
    """A ``CallbackClient`` delivering to ``voicecb_target``: ``voicecb_client.post(payload)`` returns a Reply."""
    from pytest_voicecb.client import CallbackClient, TargetError

    try:
        client = CallbackClient(voicecb_target)
    except (TargetError, TypeError, ValueError) as exc:
        pytest.fail(f"the voicecb_target fixture returned an unusable target: {exc}", pytrace=False)
    with client:
        yield client


@pytest.fixture
def voicecb_conformance(request: pytest.FixtureRequest, voicecb_seed: int) -> Callable[..., Report]:
    """Run the conformance suite: ``voicecb_conformance()`` fails the test with the report's table
    unless every check passes, and returns the ``Report``.

    Called without a target it uses ``voicecb_target``; keyword options go to ``run_conformance``
    (``skip=``, ``deadline=``, ``strict=``, ``path=`` ...; deadline and strict default to
    ``--voicecb-deadline`` / ``--voicecb-strict``); ``assert_ok=False`` returns the report without failing.
    """
    from pytest_voicecb.client import DeliveryError
    from pytest_voicecb.conformance import run_conformance

    def run(target: object = None, *, assert_ok: bool = True, **options: Any) -> Report:
        __tracebackhide__ = True
        if target is None:
            target = request.getfixturevalue("voicecb_target")
        settings = {**_conformance_options(request.config), **options}
        if "factory" not in settings:
            settings.setdefault("seed", voicecb_seed)
        try:
            report = run_conformance(target, **settings)
        except DeliveryError as exc:
            pytest.fail(str(exc), pytrace=False)
        if assert_ok and not report.ok:
            pytest.fail(str(report), pytrace=False)
        return report

    return run


# --voicecb-conformance: one test item per check, placed where the voicecb_target it needs is visible
# (under the directory of the conftest.py that defines it), so JUnit XML, -k and xdist see each check.

_RUNNER = pytest.StashKey["tuple[object, Runner] | None"]()
_COLLECTORS = pytest.StashKey["list[pytest.Collector]"]()


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Remember every directory and module collected: a conftest.py may define voicecb_target in a
    directory holding no tests at all."""
    if collector.config.getoption("voicecb_conformance", False):
        collector.config.stash.setdefault(_COLLECTORS, []).append(collector)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("voicecb_conformance", False):
        items.extend(_conformance_items(session, items))


def _conformance_items(session: pytest.Session, items: list[pytest.Item]) -> list[pytest.Item]:
    from pytest_voicecb.conformance import checks
    from pytest_voicecb.factory import PayloadFactory

    parents = _target_nodes(session, items)
    if not parents:
        raise pytest.UsageError("--voicecb-conformance: " + _HOW_TO_CONFIGURE)
    ids = [check.id for check in checks(PayloadFactory(0))]  # the ids do not depend on the seed
    made: list[pytest.Item] = []
    for parent in parents:
        module = _ConformanceModule.from_parent(parent, path=_module_path(session, parent))
        batch = []
        for check_id in ids:
            item = _ConformanceItem.from_parent(module, name=check_id, callobj=_run_conformance_check)
            item.check_id = check_id
            module.ihook.pytest_itemcollected(item=item)
            batch.append(item)
        # Report them as collected, so "collected N items" and the selection counts include them.
        collected: list[pytest.Item | pytest.Collector] = list(batch)
        module.ihook.pytest_collectreport(report=pytest.CollectReport(module.nodeid, "passed", None, collected))
        made += batch
    return made


def _target_nodes(session: pytest.Session, items: list[pytest.Item]) -> list[Node]:
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
        if not definitions or getattr(definitions[-1].func, "__module__", None) == __name__:
            continue
        found[_defining_node(session, definitions[-1], node)] = None
    if not found and _configured_target(session.config) is not None:
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


def _module_path(session: pytest.Session, parent: Node) -> Any:
    if isinstance(parent, pytest.Module):
        return parent.path.with_name(f"{parent.path.stem}-voicecb-conformance")
    base = parent.path if isinstance(parent, (pytest.Session, pytest.Dir, pytest.Package)) else session.path
    return base / "voicecb-conformance"


class _ConformanceModule(pytest.Module):
    """A module that exists in no file: it holds the conformance items of one target."""

    def _getobj(self) -> Any:
        import sys

        return sys.modules[__name__]

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []  # its items are made by pytest_collection_modifyitems


class _ConformanceItem(pytest.Function):
    """One conformance check as a test; its name is the check id."""

    check_id: str

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"voicecb conformance check {self.check_id}"


def _run_conformance_check(request: pytest.FixtureRequest, voicecb_target: object, voicecb_seed: int) -> None:
    __tracebackhide__ = True
    import shlex

    runner = _runner_for(request.config, voicecb_target, voicecb_seed)
    check_id = request.node.check_id
    result = runner.run(check_id)
    if not result.passed:
        rerun = f"pytest --voicecb-conformance -k {shlex.quote(check_id)} --voicecb-seed={voicecb_seed}"
        pytest.fail(f"{result.details()}\nrerun this check: {rerun}", pytrace=False)


def _runner_for(config: pytest.Config, target: object, seed: int) -> Runner:
    """One runner per session (same checks, one client, timings shared for the deadline check),
    pointed at whichever target the current item's fixture gave."""
    from pytest_voicecb.client import TargetError
    from pytest_voicecb.conformance import Runner

    current = config.stash.get(_RUNNER, None)
    try:
        if current is None:
            runner = Runner(target, seed=seed, **_conformance_options(config))
            config.add_cleanup(runner.close)
        else:
            previous, runner = current
            if previous is target:
                return runner
            runner.retarget(target)
    except (TargetError, TypeError, ValueError) as exc:
        pytest.fail(f"the voicecb_target fixture returned an unusable target: {exc}", pytrace=False)
    config.stash[_RUNNER] = (target, runner)
    return runner
