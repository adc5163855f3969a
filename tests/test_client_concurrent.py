"""CallbackClient.post_concurrently: deliveries that reach the handler at the same moment, in order."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from fastapi.responses import PlainTextResponse
from flask import Flask, Response, request

from pytest_voicecb.client import CallbackClient, DeliveryError, Reply
from pytest_voicecb.factory import PayloadFactory
from tests.handlers.serve import serving


def meeting_flask_app(parties: int) -> Flask:
    """Answers only once ``parties`` requests are inside the handler together (else 500 after 3 s)."""
    app = Flask("meeting")
    barrier = threading.Barrier(parties, timeout=3)

    @app.post("/<path:anything>")
    def meet(anything: str) -> Response:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return Response("alone", status=500)
        return Response(json.dumps({"body": request.get_data().decode()}), content_type="application/json")

    return app


def meeting_fastapi_app(parties: int) -> FastAPI:
    app = FastAPI()
    state = {"arrived": 0}
    everyone: dict[str, asyncio.Event] = {}

    @app.post("/{anything:path}")
    async def meet(anything: str, incoming: FastAPIRequest) -> Any:
        event = everyone.setdefault("event", asyncio.Event())
        state["arrived"] += 1
        if state["arrived"] == parties:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), 3)
        except asyncio.TimeoutError:
            return PlainTextResponse("alone", status_code=500)
        return {"body": (await incoming.body()).decode()}

    return app


def bodies(results: list[Reply | DeliveryError]) -> list[str]:
    out = []
    for result in results:
        assert isinstance(result, Reply), result
        assert result.status == 200, result.text
        out.append(result.json["body"])
    return out


def test_http_deliveries_are_in_the_handler_together_and_come_back_in_order() -> None:
    with serving(meeting_flask_app(3)) as base, CallbackClient(base, timeout=5) as client:
        results = client.post_concurrently([b"one", b"two", b"three"])
    assert bodies(results) == ["one", "two", "three"]


def test_in_process_wsgi_deliveries_run_in_threads_of_their_own() -> None:
    with CallbackClient(meeting_flask_app(2), timeout=5) as client:
        payload = PayloadFactory(1).answered()
        results = client.post_concurrently([payload, payload])
    assert bodies(results) == [json.dumps(payload, separators=(",", ":"), ensure_ascii=False)] * 2


def test_in_process_asgi_deliveries_meet_on_the_event_loop() -> None:
    with CallbackClient(meeting_fastapi_app(2), timeout=5) as client:
        results = client.post_concurrently(["a", "b"])
    assert bodies(results) == ["a", "b"]


def test_without_a_timeout_in_process_deliveries_still_run_together() -> None:
    with CallbackClient(meeting_flask_app(2), timeout=None) as client:
        assert bodies(client.post_concurrently([b"x", b"y"])) == ["x", "y"]


def test_one_hung_delivery_is_a_timed_out_error_and_the_others_are_replies() -> None:
    release = threading.Event()
    app = Flask("half-hung")

    @app.post("/<path:anything>")
    def handle(anything: str) -> Response:
        if request.get_data() == b"hang":
            release.wait(10)
        return Response('{"result":0,"errmsg":"OK"}', content_type="application/json")

    try:
        with CallbackClient(app, timeout=0.5) as client:
            fine, hung = client.post_concurrently([b"fine", b"hang"])
    finally:
        release.set()
    assert isinstance(fine, Reply)
    assert fine.status == 200
    assert isinstance(hung, DeliveryError)
    assert hung.timed_out
    assert hung.request.body == b"hang"


def test_an_unreachable_url_gives_one_error_per_item() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with CallbackClient(f"http://127.0.0.1:{port}", timeout=2) as client:
        results = client.post_concurrently([b"1", b"2"])
    assert [type(result) for result in results] == [DeliveryError, DeliveryError]
    assert all(isinstance(result, DeliveryError) and result.unreachable for result in results)


def test_nothing_to_send_sends_nothing_and_garbage_is_refused() -> None:
    with CallbackClient(meeting_flask_app(1)) as client:
        assert client.post_concurrently([]) == []
        with pytest.raises(TypeError, match="sequence"):
            client.post_concurrently(b"not a list")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="post\\(\\) takes"):
            client.post_concurrently([object()])
