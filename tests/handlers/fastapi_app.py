"""The handler as FastAPI apps: one reading the raw body (right), one with a pydantic body model (a bug)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from tests.handlers.logic import Handler


def create_app(*bugs: str, delay: float = 0.0, lifespan: bool = False) -> FastAPI:
    """A FastAPI app serving ``Handler(*bugs)``. With ``lifespan`` the handler is only set up at startup
    (as apps that open a database there do), so a runner that skips the lifespan gets 500s."""
    handler = Handler(*bugs, delay=delay)

    @asynccontextmanager
    async def startup(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"handler": handler}

    app = FastAPI(lifespan=startup if lifespan else None)
    app.state.voicecb = handler

    @app.post("/voice/callback")
    async def callback(request: Request) -> Response:
        chosen = request.state.handler if lifespan else handler
        status, content_type, body = chosen(await request.body())
        if isinstance(body, bytes):
            return Response(body, status_code=status, media_type=content_type)
        return StreamingResponse(body, status_code=status, media_type=content_type)

    return app


class _Prompt(BaseModel):
    result: str
    accept_time: str
    call_from: str
    callid: str
    end_calltime: str
    fee: str
    mobile: str
    nationcode: str
    start_calltime: str


class _Keypress(BaseModel):
    call_from: str
    callid: str
    keypress: str
    mobile: str
    nationcode: str


class _Failure(BaseModel):
    call_from: str
    callid: str
    failure_code: int
    failure_reason: str
    mobile: str
    nationcode: str


class _Envelope(BaseModel):
    voiceprompt_callback: _Prompt | None = None
    voicecode_callback: _Prompt | None = None
    voicekey_callback: _Keypress | None = None
    voice_failure_callback: _Failure | None = None


def create_pydantic_app() -> FastAPI:
    """The FastAPI handler most tutorials lead to: a pydantic body model, so bad input gets FastAPI's
    422 ``{"detail": [...]}`` instead of a contract error."""
    app = FastAPI()

    @app.post("/voice/callback")
    def callback(envelope: _Envelope) -> dict[str, Any]:
        return {"result": 0, "errmsg": "OK"}

    return app
