"""The pytest plugin: options, hooks and fixtures, wired to the library's plain objects.

pytest imports this module in every run of every project that installs pytest-voicecb, used or not,
so it imports nothing heavy at module level: werkzeug and pydantic are loaded by the first fixture
that needs them. The ``--voicecb-conformance`` items live in ``_conformance_items``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_voicecb import _conformance_items as checks
from pytest_voicecb._conformance_items import HOW_TO_CONFIGURE, path_for, settings
from pytest_voicecb._provider_fixtures import _voicecb_session_provider, voicecb_provider  # noqa: F401 (fixtures)

if TYPE_CHECKING:
    from pytest_voicecb.client import CallbackClient
    from pytest_voicecb.conformance import Report
    from pytest_voicecb.factory import PayloadFactory
    from pytest_voicecb.server import CallbackServer

# Registering costs nothing: the module is only imported (and rewritten) when a test uses it.
pytest.register_assert_rewrite("pytest_voicecb.assertions")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voicecb", "voice-notification callbacks (pytest-voicecb)")
    group.addoption(
        "--voicecb-seed",
        dest="voicecb_seed",
        default=None,
        type=_seed_option,
        metavar="N|last",
        help="seed for voicecb payloads (an integer, or 'last' to reuse the previous run's). Default: the "
        "voicecb_seed ini option, else --randomly-seed when pytest-randomly is active, else a random seed "
        "shown in the header.",
    )
    parser.addini("voicecb_seed", "seed for voicecb payloads (an integer; --voicecb-seed wins over it)", default="")
    group.addoption(
        "--voicecb-target",
        dest="voicecb_target",
        default=None,
        metavar="URL|HOST:PORT|MODULE:ATTR",
        help="the callback handler voicecb_client and the conformance suite deliver to: an http(s) URL, "
        "host:port, or 'module:attribute' naming a WSGI or ASGI app (overrides the voicecb_target ini option).",
    )
    parser.addini("voicecb_target", "the callback handler to test (see --voicecb-target)", default="")
    group.addoption(
        "--voicecb-path",
        dest="voicecb_path",
        default=None,
        type=_path_option,
        metavar="PATH",
        help="the path callbacks are posted to on in-process apps and URLs without a path "
        "(default /voice/callback; overrides the voicecb_path ini option).",
    )
    parser.addini("voicecb_path", "the path callbacks are posted to (see --voicecb-path)", default="")
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
        help="conformance: warnings (success answered to unprocessable input, questionable input accepted) "
        "fail their checks.",
    )
    group.addoption(
        "--voicecb-html",
        metavar="FILE",
        dest="voicecb_html",
        help="write the session's conformance results (--voicecb-conformance items and voicecb_conformance() "
        "calls) to FILE as one self-contained HTML report.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("voicecb_html", None):
        from pytest_voicecb.console.pytest_html import HtmlReportPlugin

        config.pluginmanager.register(HtmlReportPlugin(config, lambda: config.stash[_SEED]), "voicecb-html")
    config.addinivalue_line(
        "markers",
        "voicecb(allow_invalid=False, allow_undelivered=False): options for pytest-voicecb's fixtures in this "
        "test; allow_invalid=True lets voicecb_server receive invalid callbacks without failing the test, "
        "allow_undelivered=True lets voicecb_provider end with callbacks it could not deliver.",
    )
    _configure_seed(config)
    _check_configured_target(config)
    _check_configured_path(config)
    checks.rewrite_args(config)


# ---- option values --------------------------------------------------------------------------------


def _seed_option(value: str) -> int | str:
    if value == "last":
        return value
    try:
        return int(value)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r} is not an integer or 'last'") from None


def _seconds_option(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


def _path_option(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        import argparse

        raise argparse.ArgumentTypeError(f"{value!r} is not a URL path (it starts with '/', e.g. /voice/callback)")
    return value


def _check_configured_target(config: pytest.Config) -> None:
    """A target that can never work is a usage error, said once: not one error per test using it.

    A ``module:attribute`` is only imported when a test needs it (conftest.py files and plugins such
    as pytest-django must have set things up first).
    """
    import re

    spec = settings(config).target
    if spec is None:
        return
    module, sep, attribute = spec.partition(":")
    dotted = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"
    if sep and re.fullmatch(dotted, module) and re.fullmatch(dotted, attribute):
        return
    from pytest_voicecb.client import TargetError, resolve_target

    try:
        resolve_target(spec)
    except (TargetError, TypeError) as exc:
        raise pytest.UsageError(f"--voicecb-target / voicecb_target ini option: {exc}") from None


def _check_configured_path(config: pytest.Config) -> None:
    """The ini option gets the check argparse gives the command-line one."""
    import argparse

    path = settings(config).path
    if path is not None and config.getoption("voicecb_path", None) is None:
        try:
            _path_option(path)
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"voicecb_path ini option: {exc}") from None


# ---- payload seeding ------------------------------------------------------------------------------

# One seed per session, resolved on the controller and handed to xdist workers; each test's payload
# stream is PayloadFactory((seed, test id)), so it depends on nothing but those two.

_SEED = pytest.StashKey[int]()
_SEED_SOURCE = pytest.StashKey[str]()
_CACHE_KEY = "voicecb/seed"
_PAYLOAD_FIXTURES = frozenset({"voicecb_payload", "voicecb_seed", "voicecb_conformance"})


def _configure_seed(config: pytest.Config) -> None:
    """Resolve the session's seed: the controller's (xdist), --voicecb-seed, the ini option, or a random one."""
    workerinput = getattr(config, "workerinput", None)
    option = config.getoption("voicecb_seed", None)
    ini = str(config.getini("voicecb_seed") or "").strip()
    if workerinput is not None and "voicecb_seed" in workerinput:
        seed, source = int(workerinput["voicecb_seed"]), "controller"
    elif option == "last":
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
    elif ini:
        try:
            seed, source = int(ini), "ini voicecb_seed"
        except ValueError:
            raise pytest.UsageError(f"voicecb_seed ini option: {ini!r} is not an integer") from None
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
    """A failing test that built payloads says which seed reproduces them."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if checks.is_check(item):
        if item.config.getoption("voicecb_html", None):  # the check id, for the HTML report (and xdist's controller)
            report.user_properties.append(("voicecb_check", getattr(item, "check_id", item.name)))
        checks.drop_repeated_logs(item, report)
        return  # a conformance check prints its own rerun line
    if report.failed and _PAYLOAD_FIXTURES.intersection(getattr(item, "fixturenames", ())):
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


# ---- the recording server -------------------------------------------------------------------------


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


# ---- the client and the conformance suite ---------------------------------------------------------


@pytest.fixture
def voicecb_target(pytestconfig: pytest.Config) -> object:
    """The handler under test: override this fixture in conftest.py to return an app, a URL or a
    ``CallbackClient``.

    By default it comes from ``--voicecb-target`` or the ``voicecb_target`` ini option.
    """
    spec = settings(pytestconfig).target
    if spec is None:
        pytest.fail(HOW_TO_CONFIGURE, pytrace=False)
    from pytest_voicecb.client import TargetError, resolve_target

    try:
        return resolve_target(spec)
    except (TargetError, TypeError) as exc:
        pytest.fail(f"--voicecb-target / voicecb_target ini option: {exc}", pytrace=False)


@pytest.fixture
def voicecb_effects() -> Callable[[], object] | None:
    """What the handler did, for the conformance checks: override it to return a callable giving a
    comparable snapshot (calls placed, rows written). None (the default): side effects are not checked."""
    return None


@pytest.fixture
def voicecb_client(voicecb_target: object, pytestconfig: pytest.Config) -> Iterator[CallbackClient]:
    """A ``CallbackClient`` delivering to ``voicecb_target``: ``voicecb_client.post(payload)`` returns a Reply.

    A ``voicecb_target`` that is a ``CallbackClient`` already is used as it is.
    """
    from pytest_voicecb.client import CallbackClient, TargetError

    if isinstance(voicecb_target, CallbackClient):
        yield voicecb_target
        return
    try:
        client = CallbackClient(voicecb_target, path=path_for(pytestconfig, voicecb_target))
    except (TargetError, TypeError, ValueError) as exc:
        pytest.fail(f"the voicecb_target fixture returned an unusable target: {exc}", pytrace=False)
    with client:
        yield client


@pytest.fixture
def voicecb_conformance(request: pytest.FixtureRequest, voicecb_seed: int) -> Callable[..., Report]:
    """Run the conformance suite: ``voicecb_conformance()`` fails the test with the report (failures
    grouped by cause; everything with ``-v``) unless no check failed, and returns the ``Report``.

    Called without a target it uses ``voicecb_target`` (and ``voicecb_effects`` unless ``effects=`` is
    given); keyword options go to ``run_conformance`` (``skip=``, ``deadline=``, ``strict=``, ``path=``,
    ``effects=`` ...; path, deadline and strict default to ``--voicecb-path``, ``--voicecb-deadline`` and
    ``--voicecb-strict``). Warnings never fail the test: they are listed in the terminal summary.
    ``assert_ok=False`` returns the report without failing (or listing anything).
    """

    def run(target: object = None, *, assert_ok: bool = True, **options: Any) -> Report:
        __tracebackhide__ = True
        if target is None:
            target = request.getfixturevalue("voicecb_target")
        if "effects" not in options:
            options["effects"] = request.getfixturevalue("voicecb_effects")
        if "path" not in options and "paths" not in options:
            options["path"] = path_for(request.config, target)
        if "factory" not in options:
            options.setdefault("seed", voicecb_seed)
        report = checks.run_all(target, {**settings(request.config).runner_options(), **options})
        if request.config.getoption("voicecb_html", None):
            _html_collected(request.config).reports.append(report)
        if assert_ok:  # with assert_ok=False the test judges the report itself: no summary lines
            checks.record_report(request.node, report)
        if assert_ok and not report.ok:
            pytest.fail(report.format(verbose=request.config.option.verbose > 0), pytrace=False)
        return report

    return run


# ---- --voicecb-conformance items and the terminal summary -----------------------------------------


def pytest_collectstart(collector: pytest.Collector) -> None:
    checks.remember_collector(collector)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return checks.ignore_collect(collection_path, config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("voicecb_conformance", False):
        checks.add_items(session, items, settings(config).target)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    checks.summarize(terminalreporter, config)


# ---- --voicecb-html: the conformance results as one HTML page --------------------------------------


def _html_collected(config: pytest.Config) -> Any:
    from pytest_voicecb.console.pytest_html import collected

    return collected(config)
