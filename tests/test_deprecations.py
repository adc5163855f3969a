"""Every name moved by the API's regularisation still works for one release, with a ``DeprecationWarning``
naming the new one (CHANGELOG.md's "Deprecated" section lists the same moves)."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.provider import Provider
from pytest_voicecb.server import CallbackServer
from tests.test_server import post

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"


@pytest.fixture(scope="module")
def server() -> Iterator[CallbackServer]:
    with CallbackServer() as recorder:
        post(recorder.url, json.dumps(PayloadFactory(1).prompt(callid="p-1")).encode())
        post(recorder.url, b"not json")
        yield recorder


@pytest.fixture
def provider(server: CallbackServer) -> Iterator[Provider]:
    with Provider(server.url, seed=2) as simulator:
        simulator.backend.place("3.0", "SendTtsVoice", "86", "13900000001", {})
        simulator.backend.place("3.0", "SendTtsVoice", "86", "13900000007", {})
        simulator.run_until_idle()
        yield simulator


def test_the_warning_points_at_the_callers_line(server: CallbackServer, provider: Provider) -> None:
    from pytest_voicecb.integrations import load

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _ = server.callbacks
        provider.held()  # type: ignore[operator]
        _ = load.Delivery  # type: ignore[attr-defined]
        provider.dispatcher.retarget(server.url)  # type: ignore[attr-defined]
    assert [w.category for w in caught] == [DeprecationWarning] * 4
    assert [Path(w.filename).name for w in caught] == [Path(__file__).name] * 4


def test_server_callbacks_is_requests(server: CallbackServer) -> None:
    with pytest.deprecated_call(match=r"CallbackServer\.callbacks is deprecated; use CallbackServer\.requests"):
        old = server.callbacks
    assert old == server.requests
    assert [r.valid for r in old[:2]] == [True, False]


def test_server_unexpected_invalid_is_a_property(server: CallbackServer) -> None:
    assert [r.body for r in server.unexpected_invalid] == [b"not json"]
    with pytest.deprecated_call(match=r"unexpected_invalid\(\) is deprecated; use .*unexpected_invalid \(a property\)"):
        assert server.unexpected_invalid() == server.unexpected_invalid  # type: ignore[operator]


def test_provider_record_lists_are_properties(provider: Provider) -> None:
    assert [call.held for call in provider.held] == [True]
    assert provider.undelivered == []
    assert len(provider.deliveries) == 1
    with pytest.deprecated_call(match=r"Provider\.held\(\) is deprecated"):
        assert provider.held() == provider.held  # type: ignore[operator]
    with pytest.deprecated_call(match=r"Provider\.undelivered\(\) is deprecated"):
        assert provider.undelivered() == []  # type: ignore[operator]
    with pytest.deprecated_call(match=r"Provider\.deliveries\(\.\.\.\) is deprecated; use Provider\.find_deliveries"):
        assert provider.deliveries() == provider.deliveries  # type: ignore[operator]
    callid = provider.deliveries[0].callid
    with pytest.deprecated_call(match=r"use Provider\.find_deliveries"):
        old = provider.deliveries(callid=callid, kind="prompt")  # type: ignore[operator]
    assert old == provider.find_deliveries(callid=callid, kind="prompt") == provider.deliveries
    with pytest.deprecated_call(match=r"use Provider\.find_deliveries"):
        assert provider.deliveries(callid=None) == provider.deliveries  # type: ignore[operator]


def test_dispatcher_retarget_is_deliver_to(provider: Provider, server: CallbackServer) -> None:
    with pytest.deprecated_call(match=r"Dispatcher\.retarget is deprecated; use Dispatcher\.deliver_to"):
        provider.dispatcher.retarget(server.url_for("/elsewhere"))  # type: ignore[attr-defined]
    [decided] = provider.decide(provider.held[0].callid, "no_answer")
    provider.run_until_idle()
    assert decided.attempts[0].reply is not None
    assert decided.attempts[0].reply.request.url.endswith("/elsewhere")


def test_runner_retarget_is_deliver_to(server: CallbackServer) -> None:
    from pytest_voicecb.conformance import Runner

    with Runner(server.url_for("/first"), seed=1) as runner:
        with pytest.deprecated_call(match=r"Runner\.retarget is deprecated; use Runner\.deliver_to"):
            runner.retarget(server.url_for("/second"))
        assert runner.client.description.endswith("/second")


def test_renamed_types_keep_their_old_names() -> None:
    from pytest_voicecb import provider
    from pytest_voicecb.integrations import load
    from pytest_voicecb.provider import models

    with pytest.deprecated_call(match=r"pytest_voicecb\.provider\.Outcome is deprecated; use .*CallOutcome"):
        assert provider.Outcome is provider.CallOutcome  # type: ignore[attr-defined]
    with pytest.deprecated_call(match=r"models\.Outcome is deprecated"):
        assert models.Outcome is models.CallOutcome  # type: ignore[attr-defined]
    with pytest.deprecated_call(match=r"load\.Delivery is deprecated; use pytest_voicecb\.integrations\.load\.Post"):
        assert load.Delivery is load.Post  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = load.Nothing  # type: ignore[attr-defined]


def test_the_changelog_records_every_move() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    deprecated = text.split("### Deprecated", 1)[1].split("\n## ", 1)[0]
    moves = set(re.findall(r"`([^`]+)` -> `", deprecated))
    assert {
        "CallbackServer.callbacks",
        "CallbackServer.unexpected_invalid()",
        "Provider.deliveries(...)",
        "Provider.held()",
        "Provider.undelivered()",
        "Dispatcher.retarget",
        "conformance.Runner.retarget",
        "pytest_voicecb.provider.Outcome",
        "pytest_voicecb.integrations.load.Delivery",
    } <= moves


MOVED_MODULES = ("report", "verdict", "checklist", "explore")  # the others came and moved in one release


@pytest.mark.parametrize("name", MOVED_MODULES)
def test_a_moved_module_keeps_its_old_path_for_a_release(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``import pytest_voicecb.report`` warns once and hands out ``pytest_voicecb.conformance.report`` itself."""
    import importlib
    import sys

    new = importlib.import_module(f"pytest_voicecb.conformance.{name}")
    monkeypatch.delitem(sys.modules, f"pytest_voicecb.{name}", raising=False)
    warning = rf"pytest_voicecb\.{name} is deprecated; use pytest_voicecb\.conformance\.{name}"
    with pytest.deprecated_call(match=warning):
        old = importlib.import_module(f"pytest_voicecb.{name}")
    assert old is new
    assert f"`pytest_voicecb.{name}` -> `pytest_voicecb.conformance.{name}`" in CHANGELOG.read_text(encoding="utf-8")
