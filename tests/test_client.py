"""CallbackClient: delivery to in-process WSGI and ASGI apps and to live URLs, and every way it can go wrong."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from flask import Flask, Response, request
from werkzeug.datastructures import Headers

from pytest_voicecb.client import (
    MAX_REPLY_SIZE,
    CallbackClient,
    DeliveryError,
    Reply,
    TargetError,
    describe_target,
    resolve_target,
)
from pytest_voicecb.contract import encode
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.malformed import Case
from tests.handlers import django_app, fastapi_app, flask_app
from tests.handlers.serve import serving


def echo_app() -> Flask:
    """Answers with what it received, so tests can see exactly what the client sent."""
    app = Flask("echo")

    @app.post("/<path:anything>")
    def echo(anything: str) -> Response:
        return Response(
            json.dumps(
                {
                    "path": request.full_path.rstrip("?"),
                    "content_type": request.headers.get("Content-Type"),
                    "headers": dict(request.headers),
                    "body": request.get_data().decode("latin-1"),
                    "port": request.environ.get("REMOTE_PORT"),
                }
            ),
            content_type="application/json",
        )

    return app


@pytest.fixture
def factory() -> PayloadFactory:
    return PayloadFactory(7)


# ---- what is sent, what comes back ----------------------------------------------------------------


def test_post_a_payload_to_a_flask_app_in_process(factory: PayloadFactory) -> None:
    payload = factory.answered()
    with CallbackClient(echo_app()) as client:
        reply = client.post(payload)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    seen = reply.json
    assert seen["path"] == "/voice/callback"
    assert seen["content_type"] == "application/json"
    assert seen["body"].encode("latin-1") == encode(payload)
    assert reply.request.method == "POST"
    assert reply.request.url == "http://localhost:8000/voice/callback"
    assert reply.request.body == encode(payload)
    assert reply.request.in_process
    assert 0 < reply.elapsed < 5


def test_a_case_is_sent_with_its_own_body_and_content_type() -> None:
    case = Case("form", b"result=0&callid=1", "application/x-www-form-urlencoded", "reject", "a form body")
    with CallbackClient(echo_app()) as client:
        seen = client.post(case).json
    assert seen["content_type"] == "application/x-www-form-urlencoded"
    assert seen["body"] == "result=0&callid=1"


def test_a_case_without_content_type_sends_none() -> None:
    case = Case("bare", b"{}", "", "reject", "no content type")
    with CallbackClient(echo_app()) as client:
        seen = client.post(case).json
    assert seen["content_type"] is None


def test_bytes_str_variant_headers_path_and_content_type(factory: PayloadFactory) -> None:
    variant = factory.variants("keypress")[0]
    with CallbackClient(echo_app(), path="/hooks/voice") as client:
        assert client.post(b"\x00\xff").json["body"] == "\x00\xff"
        assert client.post("é").json["body"].encode("latin-1") == "é".encode()
        assert client.post(variant).json["body"].encode("latin-1") == encode(variant.payload)
        seen = client.post({}, path="/other?token=s3cret", headers={"X-Trace": "1"}, content_type="text/plain").json
    assert seen["path"] == "/other?token=s3cret"
    assert seen["headers"]["X-Trace"] == "1"
    assert seen["content_type"] == "text/plain"


def test_post_refuses_what_it_cannot_send() -> None:
    with CallbackClient(echo_app()) as client:
        with pytest.raises(TypeError, match="post\\(\\) takes a payload"):
            client.post(object())
        with pytest.raises(TypeError, match="headers must be a mapping"):
            client.post({}, headers=[("a", "b")])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="path must start with '/'"):
            client.post({}, path="voice")
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            client.post({}, timeout=-1)


# ---- targets --------------------------------------------------------------------------------------


def test_targets_of_every_kind_are_recognised() -> None:
    async def plain_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise RuntimeError("http only")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"result": 0, "errmsg": "OK"}'})

    class ClassAsgi:
        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            await plain_asgi(scope, receive, send)

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def starlette_view(request: Request) -> JSONResponse:
        return JSONResponse({"result": 0, "errmsg": "OK"})

    starlette = Starlette(routes=[Route("/voice/callback", starlette_view, methods=["POST"])])
    targets = {
        "flask": flask_app.create_app(),
        "django": django_app.application,
        "fastapi": fastapi_app.create_app(),
        "starlette": starlette,
        "plain-asgi": plain_asgi,
        "class-asgi": ClassAsgi(),
    }
    for name, target in targets.items():
        kind = "WSGI" if name in ("flask", "django") else "ASGI"
        assert describe_target(target).endswith(f"(in-process {kind})"), name
        with CallbackClient(target) as client:
            reply = client.post(PayloadFactory(1).answered())
        assert (reply.status, reply.json) == (200, {"result": 0, "errmsg": "OK"}), name


def test_module_attribute_strings_are_imported() -> None:
    assert resolve_target("tests.handlers.django_app:application") is django_app.application
    assert resolve_target(" http://127.0.0.1:1/x ") == "http://127.0.0.1:1/x"
    with CallbackClient("tests.handlers.django_app:application") as client:
        assert client.post(PayloadFactory(1).answered()).json == {"result": 0, "errmsg": "OK"}


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        ("no.such.module:app", TargetError, "cannot import module 'no.such.module'"),
        ("tests.handlers.django_app:nothing", TargetError, "has no attribute 'nothing'"),
        ("just-a-name", TargetError, "neither a URL"),
        ("http://", TargetError, "bad target URL"),
        ("http://127.0.0.1:99999/x", TargetError, "bad target URL"),
        ("ftp://example.test/callback", TargetError, "only http:// and https:// URLs"),
        (42, TypeError, "got int 42"),
        (None, TypeError, "got NoneType"),
        (b"http://127.0.0.1", TypeError, "got bytes"),
    ],
)
def test_unusable_targets_get_a_clear_error(target: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        CallbackClient(target)


def test_bad_client_options_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        CallbackClient(echo_app(), timeout=0)
    with pytest.raises(ValueError, match="max_reply_size"):
        CallbackClient(echo_app(), max_reply_size=0)
    with pytest.raises(ValueError, match="path must start"):
        CallbackClient(echo_app(), path="voice")


def test_url_path_defaults() -> None:
    assert CallbackClient("http://127.0.0.1:8000").url == "http://127.0.0.1:8000/voice/callback"
    assert CallbackClient("http://127.0.0.1:8000/").url == "http://127.0.0.1:8000/"
    assert CallbackClient("http://127.0.0.1:80/cb?k=1").url == "http://127.0.0.1/cb?k=1"
    assert CallbackClient("http://127.0.0.1:8000/cb", path="/other").url == "http://127.0.0.1:8000/other"


# ---- ASGI lifespan ----------------------------------------------------------------------------


def test_fastapi_lifespan_runs_at_start_and_shutdown_at_close() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        yield {"greeting": "OK"}
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.post("/voice/callback")
    async def callback(request: FastAPIRequest) -> dict[str, Any]:
        return {"result": 0, "errmsg": request.state.greeting}

    client = CallbackClient(app)
    assert events == ["startup"]
    assert client.post({}).json == {"result": 0, "errmsg": "OK"}
    client.close()
    assert events == ["startup", "shutdown"]
    with pytest.raises(RuntimeError, match="is closed"):
        client.post({})


def test_lifespan_state_reaches_the_handler() -> None:
    with CallbackClient(fastapi_app.create_app(lifespan=True)) as client:
        assert client.post(PayloadFactory(3).answered()).json == {"result": 0, "errmsg": "OK"}


def test_a_failed_lifespan_startup_is_a_target_error() -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("database is down")
        yield

    with pytest.raises(TargetError, match=r"(?s)lifespan startup failed: .*database is down"):
        CallbackClient(FastAPI(lifespan=lifespan))


def test_a_lifespan_startup_that_never_ends_is_a_target_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_voicecb.asgi import AsgiBridge

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.sleep(60)
        yield

    monkeypatch.setattr(AsgiBridge, "startup_timeout", 0.2)
    with pytest.raises(TargetError, match=r"lifespan startup did not finish within 0\.2 s"):
        CallbackClient(FastAPI(lifespan=lifespan))


# ---- a handler that raises --------------------------------------------------------------------


@pytest.mark.parametrize("make", [flask_app.create_app, fastapi_app.create_app, django_app.create_app])
def test_an_app_that_raises_gives_a_500_reply(make: Any) -> None:
    with CallbackClient(make("raise")) as client:
        reply = client.post(PayloadFactory(1).answered())
    assert reply.status == 500


def test_the_traceback_of_an_exception_that_escapes_the_app_is_kept() -> None:
    flask = flask_app.create_app("raise")
    flask.testing = True  # Flask lets the exception propagate, as to a WSGI server
    for app in (flask, fastapi_app.create_app("raise")):
        with CallbackClient(app) as client:
            reply = client.post({})
        assert reply.status == 500
        assert "RuntimeError: the handler blew up" in reply.errors


def test_a_bare_wsgi_app_raising_before_or_while_answering() -> None:
    def before(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ZeroDivisionError("before")

    def during(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        yield b'{"result": 0,'
        raise ZeroDivisionError("during")

    def silent(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return []

    for app, status, body, words in (
        (before, 500, b"Internal Server Error", "ZeroDivisionError: before"),
        (during, 200, b'{"result": 0,', "ZeroDivisionError: during"),
        (silent, 500, b"", "without calling start_response"),
    ):
        with CallbackClient(app) as client:
            reply = client.post({})
        assert (reply.status, reply.body) == (status, body)
        assert words in reply.errors


# ---- hangs, refusals, timeouts, broken servers ----------------------------------------------------


def test_a_hung_in_process_app_is_a_delivery_error_after_the_timeout() -> None:
    app = flask_app.create_app("hang")
    try:
        with CallbackClient(app, timeout=0.2) as client:
            began = time.perf_counter()
            with pytest.raises(DeliveryError) as caught:
                client.post({})
            assert time.perf_counter() - began < 2
    finally:
        app.extensions["voicecb"].release.set()
    error = caught.value
    assert error.timed_out
    assert not error.unreachable
    assert "no reply from the in-process app at /voice/callback" in str(error)
    assert "did not answer within 0.2 s" in str(error)
    assert "curl " in str(error)
    assert isinstance(error, AssertionError)


def test_a_hung_url_is_a_delivery_error_after_the_timeout() -> None:
    app = flask_app.create_app("hang")
    with serving(app) as base, CallbackClient(base, timeout=0.2) as client:
        try:
            with pytest.raises(DeliveryError, match=r"no reply within 0\.2 s") as caught:
                client.post({})
        finally:
            app.extensions["voicecb"].release.set()
        assert caught.value.timed_out
        # the broken connection is dropped and a new one serves the next delivery
        assert client.post(PayloadFactory(2).answered()).status == 200


def test_connection_refused_names_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/voice/callback"
    with CallbackClient(url) as client, pytest.raises(DeliveryError) as caught:
        client.post({})
    assert caught.value.unreachable
    assert caught.value.url == url
    assert f"no reply from {url}: connection refused" in str(caught.value)


def test_unknown_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    with CallbackClient("http://voice.invalid/cb") as client, pytest.raises(DeliveryError) as caught:
        client.post({})
    assert caught.value.unreachable
    assert "cannot resolve the host of voice.invalid" in caught.value.reason


class RawServer:
    """A socket server answering each connection with fixed bytes, then closing it."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/cb"
        self.connections = 0
        self.stopped = threading.Event()
        self.sock.settimeout(0.02)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                self.connections += 1
                conn.recv(65536)
                conn.sendall(self.answer)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(2)
        self.sock.close()


def test_a_server_that_does_not_speak_http() -> None:
    server = RawServer(b"SSH-2.0-OpenSSH_9.6\r\n")
    try:
        with CallbackClient(server.url) as client, pytest.raises(DeliveryError, match="the reply is not HTTP"):
            client.post({})
    finally:
        server.close()


def test_an_idle_keep_alive_connection_closed_by_the_server_is_retried_once() -> None:
    body = b'{"result": 0, "errmsg": "OK"}'
    server = RawServer(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    try:
        with CallbackClient(server.url) as client:
            assert client.post({}).json == {"result": 0, "errmsg": "OK"}
            time.sleep(0.05)  # the server has closed the connection the client keeps
            assert client.post({}).json == {"result": 0, "errmsg": "OK"}
        assert server.connections == 2
    finally:
        server.close()


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    """A plain HTTP/1.1 server that keeps connections open (werkzeug's dev server closes every one)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"result": 0, "errmsg": "OK", "port": self.client_address[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_deliveries_share_one_keep_alive_connection() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with CallbackClient(f"http://127.0.0.1:{server.server_address[1]}/cb") as client:
            ports = {client.post({}).json["port"] for _ in range(5)}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)
    assert len(ports) == 1


# ---- oversized replies ----------------------------------------------------------------------------


def counting_huge_app(produced: list[int]) -> Flask:
    app = Flask("huge")

    @app.post("/voice/callback")
    def huge() -> Response:
        def stream() -> Iterator[bytes]:
            chunk = b" " * 65536
            for _ in range(1600):  # 100 MiB
                produced[0] += len(chunk)
                yield chunk

        return Response(stream(), content_type="application/json")

    return app


def test_a_100_mb_reply_is_read_up_to_the_limit_in_process() -> None:
    produced = [0]
    with CallbackClient(counting_huge_app(produced)) as client:
        reply = client.post({})
    assert reply.truncated
    assert len(reply.body) == MAX_REPLY_SIZE
    assert reply.json is None
    assert produced[0] <= MAX_REPLY_SIZE + 65536


def test_a_100_mb_reply_is_read_up_to_the_limit_over_http() -> None:
    produced = [0]
    with serving(counting_huge_app(produced)) as base, CallbackClient(base, max_reply_size=4096) as client:
        reply = client.post({})
        assert reply.truncated
        assert len(reply.body) == 4096
        assert client.post(b"again").status == 200  # a new connection replaces the abandoned one
    assert produced[0] < 50 * 1024 * 1024


# ---- Reply ----------------------------------------------------------------------------------------


def make_reply(body: bytes, status: int = 200, truncated: bool = False) -> Reply:
    from pytest_voicecb.client import SentRequest

    sent = SentRequest("POST", "http://127.0.0.1:1/cb", Headers({"Content-Type": "application/json"}), b"{}")
    return Reply(status, Headers({"Content-Type": "application/json"}), body, 0.01, sent, truncated)


def test_reply_json_and_text() -> None:
    assert make_reply(b'{"result": 0}').json == {"result": 0}
    assert make_reply(b"<html>").json is None
    assert make_reply(b"").json is None
    assert make_reply(b'{"a": 1}', truncated=True).json is None
    assert make_reply(b"\xff").text == "\ufffd"


# ---- curl reproduces the delivery -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"voiceprompt_callback":{"callid":"it\'s \\"quoted\\" \xe4\xb8\xad"}}',
        b"",
        b" \r\n\t",
        b"\xff\xfe{\x00}\x00",
        b"@file-looking",
        b'{"pad":"' + b"x" * 2_000_000 + b'"}',
    ],
    ids=["quotes-and-utf8", "empty", "whitespace", "utf16", "at-sign", "two-megabytes"],
)
def test_curl_sends_the_same_bytes(body: bytes) -> None:
    received: list[bytes] = []
    app = Flask("recorder")

    @app.post("/voice/callback")
    def record() -> Response:
        received.append(request.get_data())
        return Response(request.headers.get("Content-Type", ""), content_type="text/plain")

    with serving(app) as base, CallbackClient(base + "/voice/callback") as client:
        reply = client.post(body, content_type="application/json; charset=utf-8")
        command = reply.curl()
        done = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert received == [body, body]
    assert done.stdout.endswith(b"application/json; charset=utf-8")


def test_in_process_curl_says_where_to_point_it() -> None:
    with CallbackClient(echo_app()) as client:
        command = client.post({}).curl()
    first, second = command.splitlines()
    assert first.startswith("# in-process target: replace http://localhost:8000")
    assert "http://localhost:8000/voice/callback" in second
