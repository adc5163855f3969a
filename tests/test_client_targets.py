"""Targets: host:port without a scheme, one path per kind, the environ a real server gives, app factories."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from flask import Flask, Response, abort, request

from pytest_voicecb.client import CallbackClient, TargetError, resolve_target
from pytest_voicecb.contract import encode
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer
from pytest_voicecb.values import Case
from tests.handlers.serve import serving

OK = '{"result": 0, "errmsg": "OK"}'


def where_flask_app() -> Flask:
    """Answers with where the request came from and went to, as WSGI tells it."""
    app = Flask("where")

    @app.post("/<path:anything>")
    def where(anything: str) -> Response:
        seen = {key: request.environ.get(key) for key in ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT")}
        seen |= {"remote_addr": request.remote_addr, "host": request.host, "path": request.path}
        return Response(json.dumps(seen), content_type="application/json")

    return app


def where_fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.post("/{anything:path}")
    async def where(anything: str, incoming: FastAPIRequest) -> dict[str, Any]:
        client = incoming.client
        return {
            "client": [client.host, client.port] if client else None,
            "server": list(incoming.scope["server"]),
            "host": incoming.headers.get("host"),
        }

    return app


def allow_listed_app(allowed: str) -> Flask:
    """A handler that, like many in production, answers only the provider's addresses."""
    app = Flask("allow-list")

    @app.post("/voice/callback")
    def callback() -> Response:
        if request.remote_addr != allowed:
            abort(403)
        return Response(OK, content_type="application/json")

    return app


# ---- the environ a real server gives -----------------------------------------------------------------


def test_a_flask_app_in_process_sees_a_client_address_and_port_and_a_server() -> None:
    with CallbackClient(where_flask_app()) as client:
        first, second = client.post({}).json, client.post({}).json
    assert first["REMOTE_ADDR"] == first["remote_addr"] == "127.0.0.1"
    assert 1024 <= int(first["REMOTE_PORT"]) <= 65535
    assert first["REMOTE_PORT"] != second["REMOTE_PORT"]
    assert (first["SERVER_NAME"], first["SERVER_PORT"], first["host"]) == ("localhost", "8000", "localhost:8000")


def test_remote_addr_is_configurable_and_an_allow_list_passes_in_process() -> None:
    with CallbackClient(allow_listed_app("203.0.113.9")) as client:
        assert client.post({}).status == 403
    with CallbackClient(allow_listed_app("203.0.113.9"), remote_addr="203.0.113.9") as client:
        assert client.post({}).status == 200
    with CallbackClient(where_flask_app(), remote_addr="::1") as client:
        assert client.post({}).json["remote_addr"] == "::1"
    for garbage in ("localhost", "", "1.2.3.4.5", None, 7):
        with pytest.raises(ValueError, match="remote_addr must be an IP address"):
            CallbackClient(where_flask_app(), remote_addr=garbage)  # type: ignore[arg-type]


def test_a_fastapi_app_in_process_sees_the_client_and_server_in_its_scope() -> None:
    with CallbackClient(where_fastapi_app(), remote_addr="10.1.2.3") as client:
        seen = client.post({}).json
    assert seen["client"][0] == "10.1.2.3"
    assert 1024 <= seen["client"][1] <= 65535
    assert seen["server"] == ["localhost", 8000]
    assert seen["host"] == "localhost:8000"


# ---- host:port is a URL ------------------------------------------------------------------------------


def test_host_and_port_without_a_scheme_is_an_http_url() -> None:
    assert resolve_target("127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert resolve_target("localhost:8000/cb") == "http://localhost:8000/cb"
    assert resolve_target(" [::1]:8000/cb ") == "http://[::1]:8000/cb"
    assert CallbackClient("localhost:8000/cb").url == "http://localhost:8000/cb"
    assert CallbackClient("[::1]:8000").url == "http://[::1]:8000/voice/callback"
    with pytest.raises(TargetError, match="cannot import module"):
        resolve_target("localhost:app")  # a module:attribute after all


def test_a_bare_host_and_port_reaches_a_live_server() -> None:
    with CallbackServer() as server, CallbackClient(f"127.0.0.1:{server.port}/hook") as client:
        assert client.post(PayloadFactory(3).answered()).status == 200
        assert server.wait_for(1)[0].path == "/hook"


# ---- one path per kind ---------------------------------------------------------------------------------


def test_paths_send_each_kind_to_its_own_path() -> None:
    payloads = PayloadFactory(5)
    paths = {"prompt": "/status", "voice_failure_callback": "/failure", "keypress": "/keys"}
    with CallbackClient(where_flask_app(), paths=paths) as client:
        assert client.post(payloads.answered()).json["path"] == "/status"
        assert client.post(payloads.failure()).json["path"] == "/failure"
        assert client.post(payloads.variants("keypress")[0]).json["path"] == "/keys"
        assert client.post(payloads.build("voicecode_callback")).json["path"] == "/voice/callback"  # not mapped
        assert client.post(b"{}").json["path"] == "/voice/callback"  # no kind known
        assert client.post(payloads.answered(), path="/explicit").json["path"] == "/explicit"
        case = Case("c", encode(payloads.failure()), "application/json", "reject", "why", "voice_failure_callback")
        assert client.post(case).json["path"] == "/failure"
        replies = client.post_concurrently([payloads.answered(), payloads.failure()])
        assert [reply.json["path"] for reply in replies] == ["/status", "/failure"]  # type: ignore[union-attr]


def test_unknown_kinds_in_paths_are_refused_naming_the_kinds() -> None:
    with pytest.raises(ValueError, match=r"unknown callback kind 'prompts'.*prompt \(voiceprompt_callback\)"):
        CallbackClient(where_flask_app(), paths={"prompts": "/p"})
    with pytest.raises(ValueError, match="path must start with '/'"):
        CallbackClient(where_flask_app(), paths={"prompt": "p"})
    with pytest.raises(TypeError, match="paths must map callback kinds to paths"):
        CallbackClient(where_flask_app(), paths=["/p"])  # type: ignore[arg-type]


# ---- an app factory instead of the app -----------------------------------------------------------------


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The Flask tutorial's application factory."""
    app = Flask("factory")
    app.config.update(config or {})

    @app.post("/voice/callback")
    def callback() -> Response:
        return Response(OK, content_type="application/json")

    return app


def create_app_with_args(*names: str) -> Flask:
    return create_app()


def test_an_app_factory_gets_a_hint_to_call_it() -> None:
    with pytest.raises(TargetError, match=r"app factory.*call it: return create_app\(\)"):
        CallbackClient(create_app)
    with pytest.raises(TargetError, match=r"call it: return create_app\(\)"):
        CallbackClient("tests.test_client_targets:create_app")
    with CallbackClient(create_app()) as client:  # the fix the hint names works
        assert client.post({}).status == 200


def test_a_factory_taking_any_arguments_is_caught_at_the_first_delivery() -> None:
    with CallbackClient(create_app_with_args) as client, pytest.raises(TargetError, match="app factory") as caught:
        client.post({})
    assert "call it: return create_app_with_args()" in str(caught.value)


def test_a_served_app_and_an_in_process_app_see_the_same_client_address() -> None:
    app = where_flask_app()
    with serving(app) as base, CallbackClient(base) as over_http, CallbackClient(app) as in_process:
        served, called = over_http.post({}).json, in_process.post({}).json
    assert served["remote_addr"] == called["remote_addr"] == "127.0.0.1"
    assert served["REMOTE_PORT"] is not None
    assert called["REMOTE_PORT"] is not None
