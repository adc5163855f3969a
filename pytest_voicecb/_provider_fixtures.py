"""The ``voicecb_provider`` fixture: the provider simulator, one per session (per xdist worker), reset per test.

Imports nothing heavy at module level (the plugin imports these fixtures in every pytest run): the
simulator, werkzeug and pydantic load when a test first asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_voicecb.provider import Provider
    from pytest_voicecb.provider.delivery import Route

__all__ = ["voicecb_provider"]


@pytest.fixture(scope="session")
def _voicecb_session_provider(voicecb_seed: int) -> Iterator[Provider]:
    """The session's one simulator, started by the first test that asks."""
    from pytest_voicecb.provider import Provider

    with Provider(seed=voicecb_seed) as provider:
        yield provider


def _allows_undelivered(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("voicecb")
    return bool(marker is not None and marker.kwargs.get("allow_undelivered", False))


@pytest.fixture
def voicecb_provider(
    _voicecb_session_provider: Provider, request: pytest.FixtureRequest, voicecb_seed: int
) -> Iterator[Provider]:
    """The provider simulator, reset for this test, its ids and callbacks seeded by (seed, test id).

    Configure the code under test with ``voicecb_provider.endpoint``, ``.secret_id``, ``.secret_key``,
    ``.voice_sdk_appid`` (API 3.0) or ``.legacy_url()``, ``.sdkappid``, ``.appkey`` (legacy). Callbacks go
    to the ``voicecb_target`` fixture (an app, a URL or a ``CallbackClient``), at the ``voicecb_path``
    setting, unless the test calls ``voicecb_provider.deliver_to(target, path=..., paths=...)``; the
    clock is manual: ``advance(seconds)`` and ``run_until_idle()`` deliver what falls due. At teardown the
    test fails when a callback was never acknowledged after its retries, unless it called
    ``expect_undelivered()`` or is marked ``@pytest.mark.voicecb(allow_undelivered=True)``.
    """
    provider = _voicecb_session_provider
    provider.reset(seed=(voicecb_seed, request.node.nodeid))
    provider.deliver_to(lambda: _route(request), lazy=True)
    if _allows_undelivered(request):
        provider.expect_undelivered()
    yield provider
    try:
        problem = provider.problems()
    finally:
        provider.reset()
        provider.dispatcher.deliver_to(None)
    if problem:  # outside any except block: the message is shown once
        if "answered HTTP 404" in problem:
            problem += _PATH_HINT
        pytest.fail(problem, pytrace=False)


_PATH_HINT = (
    "\n(the callback path comes from the voicecb_path ini option or --voicecb-path; a test can also call "
    "voicecb_provider.deliver_to(target, path=...) or paths={kind: path})"
)


def _route(request: pytest.FixtureRequest) -> Route:
    """Where this test's callbacks go: the ``voicecb_target`` fixture, at the configured path."""
    from pytest_voicecb._settings import path_for
    from pytest_voicecb.provider.delivery import Route

    target = request.getfixturevalue("voicecb_target")
    return Route(target, path_for(request.config, target))
