"""A small shop that phones the customer when an order ships, and follows the call through its callbacks.

This is integrator code, the loop pytest-voicecb's provider simulator tests end to end:

1. ``POST /orders/<id>/ship`` places a voice notification through the official SDK
   (``SendTtsVoice``) and stores the returned CallId with the order *before* answering, since the
   provider's callbacks may arrive at any moment after the send;
2. ``POST /voice/callback`` receives the four callback kinds at one URL (``voice_callbacks.handle``:
   validated, idempotent per (kind, callid)) and updates the order: answered, not answered (re-dialled
   once), failed with a code, confirmed by pressing 1;
3. a send the provider refuses is recorded on the order: a rate limit is "try later", anything else
   (no balance, wrong credentials) is a failure someone must look at.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vms.v20200902 import models, vms_client
from voice_callbacks import CallbackStore, handle

RETRY_LATER = {"LimitExceeded.DeliveryFrequencyLimit", "FailedOperation.AccessUpstreamTimeout"}


@dataclass
class Settings:
    """What the shop is configured with (from the environment, in production)."""

    secret_id: str
    secret_key: str
    voice_sdk_appid: str
    endpoint: str = "vms.tencentcloudapi.com"
    protocol: str = "https"
    template_id: str = "1024"
    max_redials: int = 1


@dataclass
class Order:
    id: str
    phone: str
    status: str = "new"
    """new -> calling -> answered / unanswered / call-failed; or notify-later / notify-failed."""
    calls: list[str] = field(default_factory=list)
    redials: int = 0
    confirmed: bool = False
    failure_code: int | None = None
    send_error: str | None = None
    events: list[str] = field(default_factory=list)


class Database:
    """The shop's storage (a dict here). ``outage(n)``: the next n connections fail, as databases do."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.by_callid: dict[str, str] = {}
        self._failures = 0
        self._lock = threading.Lock()

    def outage(self, connections: int = 1) -> None:
        self._failures = connections

    def connect(self) -> None:
        with self._lock:
            if self._failures:
                self._failures -= 1
                raise ConnectionError("database unavailable")


class Shop:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database()
        self.seen = CallbackStore()
        cred = credential.Credential(settings.secret_id, settings.secret_key)
        http = HttpProfile(protocol=settings.protocol, endpoint=settings.endpoint, reqTimeout=10)
        self.vms = vms_client.VmsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))
        self._lock = threading.RLock()

    def ship(self, order_id: str, phone: str) -> Order:
        with self._lock:
            order = self.db.orders.setdefault(order_id, Order(order_id, phone))
        self.notify(order)
        return order

    def notify(self, order: Order) -> None:
        """Phone the customer; the CallId is stored before anything else can happen."""
        req = models.SendTtsVoiceRequest()
        req.TemplateId = self.settings.template_id
        req.TemplateParamSet = [order.id]
        req.CalledNumber = order.phone
        req.VoiceSdkAppid = self.settings.voice_sdk_appid
        req.SessionContext = order.id
        try:
            callid = self.vms.SendTtsVoice(req).SendStatus.CallId
        except TencentCloudSDKException as exc:
            order.send_error = exc.code
            order.status = "notify-later" if exc.code in RETRY_LATER else "notify-failed"
            return
        with self._lock:
            self.db.by_callid[callid] = order.id
            order.calls.append(callid)
            order.status = "calling"

    def on_callback(self, kind: str, fields: dict[str, Any]) -> None:
        """Process a callback's first delivery (duplicates never get here)."""
        with self._lock:
            order = self.db.orders.get(self.db.by_callid.get(fields["callid"], ""))
        if order is None:
            return  # not one of ours (or from before a restore): acknowledged, nothing to do
        order.events.append(kind)
        if kind == "voicekey_callback" and fields["keypress"] == "1":
            order.confirmed = True
        elif kind == "voice_failure_callback":
            order.failure_code = fields["failure_code"]
        elif kind == "voiceprompt_callback":
            result = fields["result"]
            if result == "0":
                order.status = "answered"
            elif result == "1" and order.redials < self.settings.max_redials:
                order.redials += 1
                self.notify(order)  # nobody picked up: try once more
            else:
                order.status = "unanswered" if result == "1" else "call-failed"


def create_app(settings: Settings, db: Database | None = None) -> Flask:
    shop = Shop(settings, db)
    app = Flask("shipping")
    app.extensions["shop"] = shop

    @app.before_request
    def open_database() -> None:
        shop.db.connect()  # an outage raises: Flask answers 500, and the provider retries later

    @app.post("/orders/<order_id>/ship")
    def ship(order_id: str) -> ResponseReturnValue:
        data = request.get_json(silent=True) or {}
        order = shop.ship(order_id, str(data.get("phone", "")))
        if order.send_error:
            return jsonify(status=order.status, error=order.send_error), 502
        return jsonify(status=order.status, callid=order.calls[-1])

    @app.get("/orders/<order_id>")
    def show(order_id: str) -> ResponseReturnValue:
        order = shop.db.orders.get(order_id)
        if order is None:
            return jsonify(error="no such order"), 404
        return jsonify(vars(order))

    @app.post("/voice/callback")
    def voice_callback() -> ResponseReturnValue:
        return jsonify(handle(request.get_data(), shop.seen, shop.on_callback))

    return app
