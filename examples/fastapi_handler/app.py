"""The FastAPI wiring: take the ``Request``, read its raw body, answer with the shared ``handle()``.

Why not a pydantic body model (``async def callback(body: VoicePromptCallback)``)? FastAPI answers
input that does not fit the model with its own ``422 {"detail": [...]}``, which is not the contract's
reply, and the four kinds share one URL, so one model does not fit them anyway. ``naive.py`` is that
version; its test shows the conformance suite catching it.

Run it with ``uvicorn fastapi_handler.app:app --port 8000`` (from ``examples/``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from voice_callbacks import MAX_BODY_SIZE, CallbackStore, handle


def create_app(store: CallbackStore | None = None) -> FastAPI:
    """The application; ``store`` remembers processed callbacks (a fresh one unless given)."""
    app = FastAPI()
    app.state.store = store = store if store is not None else CallbackStore()

    @app.post("/voice/callback")
    async def voice_callback(request: Request) -> JSONResponse:
        if int(request.headers.get("content-length") or 0) > MAX_BODY_SIZE:
            return JSONResponse({"result": 1, "errmsg": f"body over the {MAX_BODY_SIZE}-byte limit"}, 413)
        return JSONResponse(handle(await request.body(), store))

    return app


app = create_app()
