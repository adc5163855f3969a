"""How not to do it: a pydantic body model. Valid callbacks work; anything else gets FastAPI's 422."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel


class PromptFields(BaseModel):
    result: str
    accept_time: str
    call_from: str
    callid: str
    end_calltime: str
    fee: str
    mobile: str
    nationcode: str
    start_calltime: str


class PromptEnvelope(BaseModel):
    voiceprompt_callback: PromptFields


app = FastAPI()


@app.post("/voice/callback")
async def voice_callback(body: PromptEnvelope) -> dict[str, object]:
    return {"result": 0, "errmsg": "OK"}
