"""Placing a call on a running simulator the way the official SDK does: API 3.0, signed (TC3-HMAC-SHA256)."""

from __future__ import annotations

import http.client
import json
import time

from pytest_voicecb.provider.v3.signing import authorization_header


def place_call(settings: dict[str, str], number: str) -> str:
    """A SendTtsVoice call to ``number`` through the simulator's ``settings`` (as it prints them, with its
    ``endpoint``); returns the callid."""
    body = json.dumps(
        {"TemplateId": "1", "CalledNumber": number, "VoiceSdkAppid": settings["voice_sdk_appid"]}
    ).encode()
    stamp = int(time.time())
    endpoint = settings["endpoint"]
    headers = {
        "Content-Type": "application/json",
        "Host": endpoint,
        "X-TC-Action": "SendTtsVoice",
        "X-TC-Version": "2020-09-02",
        "X-TC-Timestamp": str(stamp),
        "Authorization": authorization_header(
            settings["secret_id"], settings["secret_key"], host=endpoint, payload=body, timestamp=stamp
        ),
    }
    host, port = endpoint.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        return str(json.loads(connection.getresponse().read())["Response"]["SendStatus"]["CallId"])
    finally:
        connection.close()
